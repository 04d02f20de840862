"""Early stopping ends a GMVAE fit whose clusters and ELBO have settled, and only then."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import scvae
from scvae.train import ClusterConvergence
from tests.helpers import QUIET


def followed(changed, elbos, patience=3):
    convergence = ClusterConvergence(patience=patience)
    convergence.changed, convergence.elbos = list(changed), list(elbos)
    return convergence


def test_settled_needs_still_clusters_and_a_flat_elbo_over_two_windows():
    flat = [-100.0] * 6
    assert followed([np.nan, 0.0, 0.0, 0.01, 0.0, 0.01], flat).settled()
    assert followed([np.nan, 0.05, 0.04, 0.05, 0.04, 0.045], flat).settled()  # noise level
    assert not followed([np.nan, 0.3, 0.2, 0.1, 0.08, 0.06], flat).settled()  # still falling
    assert not followed([np.nan, 0.0, 0.0, 0.3, 0.2, 0.1], flat).settled()  # moving again
    rising = [-120.0, -118.0, -116.0, -110.0, -108.0, -106.0]
    assert not followed([np.nan] + [0.0] * 5, rising).settled()  # ELBO still rising
    assert not followed([0.0] * 5, flat[:5]).settled()  # fewer than two windows


def test_patience_must_be_positive():
    with pytest.raises(ValueError, match="patience"):
        ClusterConvergence(patience=0)


def test_a_converged_fit_stops_before_max_epochs_and_says_so(adata, capsys):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=32)
    max_epochs = 400
    model.train(max_epochs, batch_size=32, enable_progress_bar=True)
    epochs = len(model.history["elbo_train"])
    assert model.schedule_.last_placement < epochs < max_epochs
    err = capsys.readouterr().err  # under the progress bar, which ends short of 400
    bar, message = err.rsplit("\n", 2)[:2]
    assert f"{epochs - 1}/400" in bar or f"{epochs}/400" in bar
    assert message == (
        f"Training stopped after epoch {epochs} of 400: the clusters and the ELBO have settled."
    )
    changed = model.history["clusters_changed"]["clusters_changed"].to_numpy()
    assert changed[-10:].mean() <= 0.02


def test_the_validation_cells_assignments_are_followed(adata, monkeypatch):
    """The training plan hands each validation pass's q(y | x) to the callback; the training
    cells' are computed only without validation cells."""

    def not_expected(*args, **kwargs):
        raise AssertionError("followed the training cells although there were validation cells")

    monkeypatch.setattr(ClusterConvergence, "_training_clusters", not_expected)
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    model.train(6, warmup_epochs=1, component_init_epochs=(2,), **QUIET)
    assert len(model.history["clusters_changed"]) >= 2


def test_a_fit_that_settles_only_at_its_last_epoch_did_not_stop_early():
    convergence = ClusterConvergence()
    convergence.on_train_start(SimpleNamespace(max_epochs=5), None)
    convergence.stopped_epoch = 5
    assert convergence.stop_message is None
    convergence.stopped_epoch = 3
    assert convergence.stop_message.startswith("Training stopped after epoch 3 of 5:")


def test_without_early_stopping_a_fit_runs_to_max_epochs(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    model.train(12, stop_when_converged=False, **QUIET)
    assert len(model.history["elbo_train"]) == 12
    assert "clusters_changed" not in model.history


def test_an_epoch_without_validation_is_not_counted():
    """With validation every other epoch, the epochs in between bring no new assignments:
    they must not count as assignments that did not move."""
    convergence = ClusterConvergence(start_epoch=0)
    module = SimpleNamespace(log=lambda *args, **kwargs: None)
    trainer = SimpleNamespace(
        current_epoch=0, callback_metrics={}, should_stop=False, sanity_checking=False
    )
    convergence.on_validation_epoch_start(trainer, module)
    for qy in (torch.eye(3)[[0, 1]], torch.eye(3)[[2, 0]]):  # two minibatches
        convergence.on_validation_batch_end(trainer, module, {"qy": qy}, None, 0)
    convergence.on_validation_epoch_end(trainer, module)
    for epoch in range(3):  # validation ran in epoch 0 only
        trainer.current_epoch = epoch
        convergence.on_train_epoch_end(trainer, module)
    assert len(convergence.changed) == 1


@pytest.mark.parametrize("train_size", [1.0, None])
def test_the_elbos_followed_are_those_of_their_epochs(adata, train_size):
    """Without validation cells the training ELBO is followed, which the plan logs only
    after the callbacks' end of the epoch: it must not be the previous epoch's."""
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    convergence = ClusterConvergence(start_epoch=2, patience=50)
    model.train(
        6,
        train_size=train_size,
        warmup_epochs=1,
        component_init_epochs=(2,),
        stop_when_converged=False,
        callbacks=[convergence],
        **QUIET,
    )
    key = "elbo_train" if train_size == 1.0 else "elbo_validation"
    logged = model.history[key][key].to_numpy(dtype=float)
    np.testing.assert_allclose(convergence.elbos, logged[2:], rtol=1e-6)
