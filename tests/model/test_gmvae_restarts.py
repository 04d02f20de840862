"""The GMVAE's restarts: each fit from the same cells and callbacks, the one kept chosen
by ELBO or by agreement, and a failed restart."""

import numpy as np
import pytest
import scvi
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import EarlyStopping
from sklearn.metrics import adjusted_rand_score

import scvae
from scvae._result_keys import CLUSTER_KEY, LATENT_KEY
from scvae.model._restarts import select_restart, training_elbo
from scvae.train import mean_agreements
from tests.helpers import QUIET


def test_restarts_keep_the_fit_with_the_highest_training_elbo(adata):
    scvae.setup_anndata(adata, layer="counts")
    scvi.settings.seed = 0
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    model.train(max_epochs=4, n_restarts=3, restart_selection="elbo", **QUIET)
    elbos = model.restart_elbos_
    assert elbos.shape == (3,) and len(set(elbos)) == 3  # three different fits
    assert training_elbo(model) == pytest.approx(elbos.max(), abs=1e-4)
    assert len(model.history["elbo_train"]) == 4  # the kept fit's history, not all three
    np.testing.assert_array_equal(adata.obs[CLUSTER_KEY].astype(int), model.predict())
    assert model.restart_agreements_.shape == (3,)
    model.train(max_epochs=1, **QUIET)  # a single fit leaves no restart results behind
    assert model.restart_elbos_ is None and model.restart_agreements_ is None


class EpochsPerFit(Callback):
    """Records the epochs of every training run, restarts included (copies are itself)."""

    def __init__(self):
        self.epochs = []

    def on_train_end(self, trainer, pl_module):
        self.epochs.append(trainer.current_epoch)

    def __deepcopy__(self, memo):
        return self


def test_every_restart_starts_from_the_users_callbacks_as_given(adata):
    scvae.setup_anndata(adata, layer="counts")
    scvi.settings.seed = 0
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    # Shared, early stopping would carry the first fit's best ELBO into the fresh restarts
    # and stop them after two epochs, before any placement.
    stopper = EarlyStopping(monitor="elbo_validation", mode="max", patience=2)
    record = EpochsPerFit()
    model.train(
        max_epochs=6, n_restarts=3, stop_when_converged=False, callbacks=[stopper, record], **QUIET
    )
    assert record.epochs == [6, 6, 6]


def test_agreement_keeps_the_restart_the_others_agree_with_most(adata):
    scvae.setup_anndata(adata, layer="counts")
    scvi.settings.seed = 0
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    model.train(max_epochs=4, n_restarts=3, **QUIET)  # restart_selection="agreement"
    agreements = model.restart_agreements_
    most = np.flatnonzero(np.isclose(agreements, agreements.max()))
    kept = most[np.argmax(model.restart_elbos_[most])]  # ties go to the higher ELBO
    assert training_elbo(model) == pytest.approx(model.restart_elbos_[kept], abs=1e-4)
    # The agreement of the kept fit is the mean ARI of its clusters with the other fits'.
    scvi.settings.seed = 0
    others = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    others.train(max_epochs=4, n_restarts=3, restart_selection="elbo", annotate=False, **QUIET)
    np.testing.assert_allclose(others.restart_agreements_, agreements)
    np.testing.assert_allclose(others.restart_elbos_, model.restart_elbos_)


class RecordTrainingCells(Callback):
    """Keeps the training cells of every fit it takes part in."""

    def __init__(self):
        self.cells = []

    def on_train_start(self, trainer, pl_module):
        self.cells.append(np.array(trainer.datamodule.train_idx))

    def __deepcopy__(self, memo):  # one record for all restarts, each of which gets a copy
        return self


def test_restarts_are_trained_and_compared_on_the_same_cells_without_a_seed(adata, monkeypatch):
    scvae.setup_anndata(adata, layer="counts")
    monkeypatch.setattr(scvi.settings, "seed", None)  # scvi-tools then draws a split per fit
    record = RecordTrainingCells()
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    model.train(max_epochs=2, n_restarts=3, callbacks=[record], datasplitter_kwargs=None, **QUIET)
    assert len(record.cells) == 3
    for cells in record.cells[1:]:
        np.testing.assert_array_equal(cells, record.cells[0])
    np.testing.assert_array_equal(model.train_indices, record.cells[0])


def test_mean_agreements_and_the_selection_rules():
    one, same, other = np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0]), np.array([0, 1, 0, 1])
    agreements = mean_agreements([one, same, other])
    expected = adjusted_rand_score(one, other)  # relabelled copies agree perfectly
    np.testing.assert_allclose(agreements, [(1 + expected) / 2] * 2 + [expected])
    assert np.isnan(mean_agreements([one])).all()
    elbos, n_clusters = np.array([-3.0, -1.0, -2.0]), np.array([3, 3, 3])
    assert select_restart(elbos, np.array([0.5, 0.2, 0.5]), "elbo", n_clusters) == 1
    # The two most agreeing fits tie; the higher ELBO of the two wins.
    assert select_restart(elbos, np.array([0.5, 0.2, 0.5]), "agreement", n_clusters) == 2
    # Two fits with every cell in one cluster agree perfectly; they are not kept.
    one_cluster = np.array([3, 1, 1])
    assert select_restart(elbos, np.array([0.0, 1.0, 1.0]), "agreement", one_cluster) == 0


class FailOnSecondFit(Callback):
    """Raises at the start of the second training run it takes part in."""

    def __init__(self):
        self.fits = 0

    def on_train_start(self, trainer, pl_module):
        self.fits += 1
        if self.fits == 2:
            raise RuntimeError("second fit failed")

    def __deepcopy__(self, memo):  # counts the fits of all restarts, each of which gets a copy
        return self


def test_a_failed_restart_keeps_the_finished_fit_and_annotates_nothing(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    with pytest.raises(RuntimeError, match="second fit failed"):
        model.train(max_epochs=2, n_restarts=3, callbacks=[FailOnSecondFit()], **QUIET)
    assert model.is_trained_ and model.restart_elbos_.shape == (1,)
    assert training_elbo(model) == pytest.approx(model.restart_elbos_[0], abs=1e-4)
    assert LATENT_KEY not in adata.obsm and CLUSTER_KEY not in adata.obs


def test_restarts_that_would_never_place_their_components_are_refused(adata):
    """Every restart after the first starts from a new module, all components at one point,
    even when the current module's are placed."""
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    model.train(max_epochs=3, **QUIET)
    history = model.history["elbo_train"].copy()
    with pytest.raises(ValueError, match=r"n_restarts=2 trains every restart .* one point"):
        model.train(max_epochs=2, component_init_epochs=0, n_restarts=2, **QUIET)
    assert model.history["elbo_train"].equals(history)  # the earlier fit kept, untouched
    model.train(max_epochs=1, component_init_epochs=0, **QUIET)  # one fit: placed already
