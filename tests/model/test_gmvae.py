"""The GMVAE's training: it clusters planted cell types, warms up and places its mixture,
refuses bad options, and reports the clusters it leaves empty."""

import warnings

import numpy as np
import pytest
import scvi
import torch
from lightning.pytorch.callbacks import EarlyStopping
from sklearn.metrics import adjusted_rand_score

import scvae
from scvae._result_keys import CLUSTER_KEY
from scvae.datasets import synthetic_counts
from scvae.model._cluster_selection import cluster_use
from tests.helpers import QUIET, KLWeights


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_planted_cell_types_are_recovered_on_every_seed(seed):
    adata = synthetic_counts(n_cells=1000, n_genes=100, n_clusters=5, seed=seed)
    scvae.setup_anndata(adata, layer="counts")
    scvi.settings.seed = seed
    model = scvae.GMVAE(adata, n_clusters=5, n_latent=5, n_hidden=64)
    model.train(max_epochs=50, **QUIET)
    assert adjusted_rand_score(adata.obs["cell_type"], adata.obs[CLUSTER_KEY]) >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_clusters_follow_cell_types_not_a_strong_batch_effect(seed):
    adata = synthetic_counts(
        n_cells=1000, n_genes=100, n_clusters=4, n_batches=2, batch_effect=1.0, seed=seed
    )
    scvae.setup_anndata(adata, layer="counts", batch_key="batch")
    scvi.settings.seed = seed
    model = scvae.GMVAE(adata, n_clusters=4, n_latent=5, n_hidden=64)
    model.train(max_epochs=100, **QUIET)
    clusters = adata.obs[CLUSTER_KEY]
    assert adjusted_rand_score(adata.obs["cell_type"], clusters) >= 0.9
    assert adjusted_rand_score(adata.obs["batch"], clusters) <= 0.1


def test_kl_warm_up_lasts_the_first_30_percent_of_training(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    record = KLWeights()
    model.train(max_epochs=10, callbacks=[record], **QUIET)
    np.testing.assert_allclose(record.weights, [0, 1 / 3, 2 / 3] + [1] * 7, rtol=1e-6)
    # A warm-up the user asks for is kept, and the placements wait for it.
    record = KLWeights()
    model.train(max_epochs=6, plan_kwargs={"n_epochs_kl_warmup": 5}, callbacks=[record], **QUIET)
    np.testing.assert_allclose(record.weights, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], rtol=1e-6)
    assert model.schedule_.warmup_epochs == 5 and min(model.schedule_.placement_epochs) >= 5
    with pytest.raises(ValueError, match="warm-up of 10 epochs lasts all max_epochs=3"):
        model.train(max_epochs=3, plan_kwargs={"n_epochs_kl_warmup": 10}, **QUIET)


def test_a_fit_passes_over_the_cells_once_after_training(adata, monkeypatch):
    """The cluster selection and the annotation share one pass over the cells."""
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=4, n_latent=3, n_hidden=32)
    passes = []
    posterior = scvae.GMVAE._posterior

    def counted(self, adata, indices, *args, **kwargs):
        passes.append(None if indices is None else len(indices))
        return posterior(self, adata, indices, *args, **kwargs)

    monkeypatch.setattr(scvae.GMVAE, "_posterior", counted)
    model.train(max_epochs=4, **QUIET)
    assert passes == [None]
    np.testing.assert_array_equal(adata.obs[CLUSTER_KEY].astype(int), model.predict())
    assert model.cluster_sizes_.sum() == adata.n_obs


def test_components_never_placed_from_one_point_are_refused(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_hidden=16)
    for epochs in (0, ()):
        with pytest.raises(ValueError, match="every cell would stay in one cluster"):
            model.train(max_epochs=3, component_init_epochs=epochs, **QUIET)
    placement = scvae.train.ComponentInitialization(2)  # the user places them
    model.train(max_epochs=3, component_init_epochs=0, callbacks=[placement], **QUIET)
    assert adata.obs["scvae_cluster"].nunique() > 1
    model.train(max_epochs=2, component_init_epochs=0, **QUIET)  # placed: kept as they are


def test_a_users_placement_beyond_max_epochs_does_not_count(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_hidden=16)
    late = scvae.train.ComponentInitialization(8)
    with pytest.raises(ValueError, match=r"its epochs \[8\] are beyond max_epochs=6"):
        model.train(max_epochs=6, component_init_epochs=0, callbacks=[late], **QUIET)
    assert not model.is_trained_


def test_a_users_early_stopping_before_the_last_placement_is_reported(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=2, n_hidden=16)
    stop = EarlyStopping("elbo_train", patience=1, mode="min")  # the ELBO rises: stops at once
    with pytest.warns(
        UserWarning, match=r"ended after epoch 2, before the components' last"
    ) as said:
        model.train(max_epochs=12, callbacks=[stop], **QUIET)
    (warning,) = [w for w in said if "last placement" in str(w.message)]
    assert "EarlyStopping(monitor='elbo_train') stopped it" in str(warning.message)
    assert "early_stopping=True" in str(warning.message)
    assert warning.filename == __file__
    assert len(model.history["elbo_train"]) == 2 < model.schedule_.last_placement


def test_a_fit_that_ends_at_its_last_placement_is_reported_with_the_cause(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=2, n_hidden=16)
    with pytest.warns(
        UserWarning, match=r"ended after epoch 6, at the components. last.*max_steps"
    ):
        model.train(max_epochs=8, component_init_epochs=(4, 6), max_steps=6 * 3, **QUIET)
    assert len(model.history["elbo_train"]) == 6
    with warnings.catch_warnings():  # a schedule compressed into one epoch places at its end
        warnings.filterwarnings("error", message=".*last placement")
        model.train(max_epochs=1, **QUIET)


def test_bad_options_fail_before_training(adata):
    scvae.setup_anndata(adata)
    for bad in (0, True, 2.5, "Auto"):
        with pytest.raises(ValueError, match="n_clusters"):
            scvae.GMVAE(adata, n_clusters=bad)
    with pytest.raises(ValueError, match="prior"):
        scvae.GMVAE(adata, prior="dirichlet")
    for spread in (-1.0, float("nan"), "1"):
        with pytest.raises(ValueError, match=r"component_spread .* must be a finite number"):
            scvae.GMVAE(adata, component_spread=spread)
    with pytest.raises(TypeError, match="marginal_cluster_kl must be True or False"):
        scvae.GMVAE(adata, inference="per_component", marginal_cluster_kl="no")
    too_many = scvae.GMVAE(adata, n_clusters=adata.n_obs + 1)
    with pytest.raises(ValueError, match=r"more than the \d+ training cells"):
        too_many.train(max_epochs=1, **QUIET)
    model = scvae.GMVAE(adata, n_clusters=3)
    for bad in (0, True, 2.5):
        with pytest.raises(ValueError, match="n_restarts must be a positive integer"):
            model.train(max_epochs=1, n_restarts=bad, **QUIET)
    with pytest.raises(ValueError, match=r"restart_selection.*'likelihood'"):
        model.train(max_epochs=1, n_restarts=2, restart_selection="likelihood", **QUIET)
    assert not model.is_trained_


def test_components_that_empty_out_are_reported_and_recorded(adata):
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=4, n_latent=3, n_hidden=16)
    model.train(max_epochs=2, **QUIET)
    with torch.no_grad():  # three components far from every cell, and left there
        model.module.prior.means[1:] = 100.0
    with pytest.warns(UserWarning, match=r"3 of the 4 GMVAE clusters hold") as said:
        model.train(max_epochs=1, component_init_epochs=0, **QUIET)
    (warning,) = [warning for warning in said if "GMVAE clusters hold" in str(warning.message)]
    assert "so 1 is in use" in str(warning.message)
    assert warning.filename == __file__  # the user's call of train(), not scvae's line
    assert model.n_clusters_used_ == 1
    assert model.cluster_sizes_.tolist() == [adata.n_obs, 0, 0, 0]
    assert model.summary()["n_clusters_used"] == 1


def test_a_cluster_of_a_few_cells_is_not_counted_as_in_use():
    n_used, message = cluster_use(np.array([500, 497, 3]))
    assert n_used == 2 and "1 of the 3 GMVAE clusters holds fewer than 4 cells" in message
    assert "so 2 are in use" in message
    assert cluster_use(np.array([500, 500, 500])) == (3, None)


def test_early_stopping_waits_for_the_mixture():
    adata = synthetic_counts(n_cells=200, n_genes=30, n_clusters=3, seed=0)
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=2, n_hidden=16)
    model.train(
        max_epochs=40,
        early_stopping=True,
        early_stopping_patience=1,
        stop_when_converged=False,
        plan_kwargs={"lr": 1e-2},
        **QUIET,
    )
    assert len(model.history["elbo_train"]) > model.schedule_.mixture_start
    assert model.n_clusters_used_ == 3  # the components were placed
