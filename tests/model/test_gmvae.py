"""The GMVAE clusters planted cell types and writes results where scanpy expects them."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scvi
import torch
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import EarlyStopping
from sklearn.metrics import adjusted_rand_score

import scvae
from scvae._result_keys import (
    CLUSTER_CONFIDENCE_KEY,
    CLUSTER_KEY,
    CLUSTER_PROBABILITIES_KEY,
    LATENT_KEY,
)
from scvae.datasets import synthetic_counts
from scvae.model._cluster_selection import cluster_use
from scvae.model._restarts import select_restart, training_elbo
from scvae.train import mean_agreements
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


@pytest.fixture
def trained(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=4, n_latent=3, n_hidden=32)
    model.train(max_epochs=4, **QUIET)
    return model, adata


def test_training_writes_latent_clusters_probabilities_and_confidence(trained):
    model, adata = trained
    probabilities = adata.obsm[CLUSTER_PROBABILITIES_KEY]
    assert adata.obsm[LATENT_KEY].shape == (adata.n_obs, 3)
    assert probabilities.shape == (adata.n_obs, 4)
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-5)
    clusters = adata.obs[CLUSTER_KEY]
    assert isinstance(clusters.dtype, pd.CategoricalDtype)
    np.testing.assert_array_equal(clusters.astype(int), probabilities.argmax(1))
    np.testing.assert_allclose(adata.obs[CLUSTER_CONFIDENCE_KEY], probabilities.max(1))
    np.testing.assert_array_equal(model.predict(), probabilities.argmax(1))
    soft = model.predict(soft=True)
    assert list(soft.index) == list(adata.obs_names)
    np.testing.assert_allclose(soft.to_numpy(), probabilities, rtol=1e-5)
    for key in ("kl_z_train", "kl_y_train", "elbo_validation"):
        assert key in model.history


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


def test_a_query_dataset_is_annotated_without_touching_the_reference(trained):
    model, adata = trained
    query = synthetic_counts(n_cells=50, n_genes=60, n_clusters=3, seed=1)
    query.obs_names = [f"query_{i}" for i in range(50)]
    reference_clusters = adata.obs[CLUSTER_KEY].copy()
    model.annotate(query)
    assert query.obsm[CLUSTER_PROBABILITIES_KEY].shape == (50, 4)
    assert query.obsm[LATENT_KEY].shape == (50, 3)
    pd.testing.assert_series_equal(adata.obs[CLUSTER_KEY], reference_clusters)


def test_unseeded_samples_repeat_in_a_seeded_session(trained):
    model, _ = trained
    draws = []
    for _ in range(2):
        scvi.settings.seed = 5
        draws.append(model.sample(5))
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.array_equal(model.sample(5), model.sample(5))  # the session moves on


def test_queries_with_a_fixed_answer_leave_the_sessions_random_state(trained):
    model, _ = trained
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model.predict(), model.get_latent_representation(), model.annotate()
    torch.testing.assert_close(torch.rand(3), expected)


def test_a_cluster_has_one_colour_in_every_annotated_anndata(trained):
    model, adata = trained
    colours = dict(
        zip(adata.obs[CLUSTER_KEY].cat.categories, adata.uns[f"{CLUSTER_KEY}_colors"], strict=True)
    )
    assert len(set(colours.values())) == len(colours)
    query = adata[adata.obs[CLUSTER_KEY] != adata.obs[CLUSTER_KEY].cat.categories[0]].copy()
    del query.uns[f"{CLUSTER_KEY}_colors"]
    model.annotate(query)
    categories = query.obs[CLUSTER_KEY].cat.categories
    assert len(categories) < len(colours)  # the first cluster holds none of these cells
    assert query.uns[f"{CLUSTER_KEY}_colors"] == [colours[name] for name in categories]


def test_cluster_profiles_and_samples_come_from_the_generative_model(trained):
    model, adata = trained
    profiles = model.get_cluster_profiles()
    assert profiles.shape == (4, adata.n_vars)
    assert list(profiles.columns) == list(adata.var_names)
    np.testing.assert_allclose(profiles.sum(1), 1, rtol=1e-5)
    counts = model.sample(20, cluster=2, seed=0)
    assert counts.shape == (20, adata.n_vars)
    assert (counts >= 0).all() and np.array_equal(counts, np.round(counts))
    np.testing.assert_array_equal(counts, model.sample(20, cluster=2, seed=0))
    name = adata.obs["scvae_cluster"].cat.categories[0]  # a cluster as obs names it
    np.testing.assert_array_equal(
        model.sample(5, cluster=name, seed=0), model.sample(5, cluster=int(name), seed=0)
    )
    for cluster in (4, 1.5, "x", True):
        with pytest.raises(ValueError, match=r"is not one of \['0', '1', '2', '3'\]"):
            model.sample(5, cluster=cluster)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        model.sample(0)


@pytest.fixture(scope="module")
def separated():
    """A GMVAE fitted to 3 well-separated planted types (it finds them all: ARI 1)."""
    adata = synthetic_counts(
        n_cells=500, n_genes=60, n_clusters=3, marker_fraction=0.2, marker_fold_change=10, seed=0
    )
    scvae.setup_anndata(adata)
    scvi.settings.seed = 0
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=5, n_hidden=64)
    model.train(max_epochs=30, **QUIET)
    assert adjusted_rand_score(adata.obs["cell_type"], model.predict()) > 0.95
    return model, adata


def test_each_cluster_profile_is_the_expression_of_that_clusters_cells(separated):
    model, adata = separated
    clusters = model.predict()
    counts = adata.X.toarray()
    normalised = counts / counts.sum(1, keepdims=True)
    cells = np.log([normalised[clusters == k].mean(0) for k in range(3)])
    profiles = np.log(model.get_cluster_profiles().to_numpy())
    # What sets each cluster apart (its log expression less the clusters' mean), compared.
    cells, profiles = cells - cells.mean(0), profiles - profiles.mean(0)
    correlation = np.corrcoef(profiles, cells)[:3, 3:]  # profile k (row) vs cluster j's cells
    np.testing.assert_array_equal(correlation.argmax(1), [0, 1, 2])
    assert (np.diag(correlation) > 0.8).all()


def test_cells_sampled_from_a_cluster_are_assigned_to_it(separated):
    model, adata = separated
    for k in range(3):
        counts = model.sample(200, cluster=k, seed=0)
        assigned = model.predict(ad.AnnData(counts.astype(np.float32), var=adata.var.copy()))
        assert (assigned == k).mean() > 0.8, k


def test_a_seeded_sample_leaves_the_session_random_state_alone(trained):
    model, _ = trained
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model.sample(5, seed=0)
    torch.testing.assert_close(torch.rand(3), expected)


def test_piecewise_profiles_agree_with_the_cells_of_each_cluster():
    # The piecewise likelihood's normalised expression depends on the total count: the
    # profiles are decoded at a typical one, not at 1.
    adata = synthetic_counts(n_cells=200, n_genes=40, n_clusters=3, mean_library_size=500)
    scvae.setup_anndata(adata, layer="counts")
    scvi.settings.seed = 0
    model = scvae.GMVAE(adata, n_clusters=3, piecewise_cutoff=3, n_latent=4, n_hidden=16)
    model.train(max_epochs=3, component_init_epochs=[1], **QUIET)
    profiles = model.get_cluster_profiles().to_numpy()
    expression = model.get_normalized_expression(return_numpy=True, n_samples=20)
    clusters = model.predict()
    for k in np.unique(clusters):
        cells = expression[clusters == k].mean(0)
        assert np.corrcoef(profiles[k], cells)[0, 1] > 0.9


def test_profiles_and_samples_take_a_batch_by_name_or_code():
    adata = synthetic_counts(n_cells=200, n_genes=30, n_clusters=3, n_batches=2, seed=0)
    scvae.setup_anndata(adata, layer="counts", batch_key="batch")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    model.train(max_epochs=1, **QUIET)
    pd.testing.assert_frame_equal(
        model.get_cluster_profiles(transform_batch="batch_1"),
        model.get_cluster_profiles(transform_batch=1),
    )
    np.testing.assert_array_equal(
        model.sample(10, transform_batch="batch_1", seed=0),
        model.sample(10, transform_batch=1, seed=0),
    )
    for bad in ("batch_9", 2):
        with pytest.raises(ValueError, match="batch: give one of batch_0, batch_1 or its code"):
            model.get_cluster_profiles(transform_batch=bad)
        with pytest.raises(ValueError, match="batch_0"):
            model.sample(5, transform_batch=bad)


def test_elbo_marginal_likelihood_and_expression_queries(trained):
    model, adata = trained
    elbo = model.get_elbo()
    log_likelihood = model.get_marginal_ll(n_mc_samples=20)
    assert elbo <= log_likelihood + 1.0  # the ELBO bounds log p(x) from below
    expression = model.get_normalized_expression(library_size=1.0)
    np.testing.assert_allclose(expression.sum(1), 1, rtol=1e-4)
    assert model.posterior_predictive_sample().shape == (adata.n_obs, adata.n_vars)


@pytest.mark.parametrize("inference", ["responsibilities", "per_component"])
def test_latent_draws_have_the_posterior_mean_and_variance(adata, inference):
    """scvi-tools' arguments of get_latent_representation (draws, the posterior's moments, a
    dataloader) work for both forms, and its aggregated posterior is built from them."""
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16, inference=inference)
    model.train(max_epochs=2, **QUIET)
    mean, variance = model.get_latent_representation(return_dist=True)
    np.testing.assert_allclose(mean, adata.obsm[LATENT_KEY], rtol=1e-5, atol=1e-6)
    n_draws = 200
    draws = np.stack([model.get_latent_representation(give_mean=False) for _ in range(n_draws)])
    standardised = (draws.mean(0) - mean) / np.sqrt(variance / n_draws)
    assert 0.85 < np.sqrt(np.mean(standardised**2)) < 1.15  # unit variance if draws are right
    assert 0.9 < np.mean(draws.var(0) / variance) < 1.1
    loader = model._query_loader(adata, indices=np.arange(10))
    np.testing.assert_allclose(
        model.get_latent_representation(dataloader=loader), mean[:10], rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="not both"):
        model.get_latent_representation(adata, dataloader=loader)
    assert model.get_aggregated_posterior().sample((5,)).shape == (5, 3)


def test_save_load_round_trip_gives_identical_clusters(trained, tmp_path):
    model, adata = trained
    model.save(tmp_path / "gmvae")
    loaded = scvae.GMVAE.load(tmp_path / "gmvae", adata=adata)
    np.testing.assert_array_equal(
        model.predict(soft=True).to_numpy(), loaded.predict(soft=True).to_numpy()
    )
    np.testing.assert_array_equal(
        model.get_latent_representation(), loaded.get_latent_representation()
    )
    # scvi-tools' order of arguments: adata, accelerator, device, prefix.
    model.save(tmp_path / "prefixed", prefix="run1_")
    loaded = scvae.GMVAE.load(tmp_path / "prefixed", adata, "cpu", "auto", "run1_")
    np.testing.assert_array_equal(model.predict(), loaded.predict())


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


def test_bad_options_fail_before_training(adata):
    scvae.setup_anndata(adata)
    for bad in (0, True, 2.5, "Auto"):
        with pytest.raises(ValueError, match="n_clusters"):
            scvae.GMVAE(adata, n_clusters=bad)
    with pytest.raises(ValueError, match="prior"):
        scvae.GMVAE(adata, prior="dirichlet")
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
    with pytest.warns(UserWarning, match=r"3 of the 4 GMVAE clusters hold .* so 1 is in use"):
        model.train(max_epochs=1, component_init_epochs=0, **QUIET)
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
