"""A trained GMVAE's results and queries: results written where scanpy expects them,
annotation of other cells, cluster profiles and samples, likelihoods, latent draws, and
saving."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scvi
import torch
from sklearn.metrics import adjusted_rand_score

import scvae
from scvae._result_keys import (
    CLUSTER_CONFIDENCE_KEY,
    CLUSTER_KEY,
    CLUSTER_PROBABILITIES_KEY,
    LATENT_KEY,
)
from scvae.datasets import synthetic_counts
from tests.helpers import QUIET


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


def test_bad_query_options_are_named(trained):
    model, _ = trained
    with pytest.raises(ValueError, match="batch_size is the number of cells per minibatch"):
        model.predict(batch_size=0)  # quietly the default before
    with pytest.raises(TypeError, match="soft must be True or False"):
        model.predict(soft="no")
    with pytest.raises(ValueError, match="library_size is the total count of each new cell"):
        model.sample(3, library_size=-5)  # drew counts before
    assert model.sample(3, library_size=1e4, seed=0).shape == (3, model.adata.n_vars)


def test_samples_refuse_counts_changed_after_setup(trained):
    model, adata = trained
    sc = pytest.importorskip("scanpy")
    sc.pp.normalize_total(adata, layer="counts")  # the registered layer, in place
    with pytest.raises(ValueError, match="normalised or log-transformed in place"):
        model.sample(3, seed=0)  # would draw the new cells' totals from normalised ones
    assert model.sample(3, library_size=1000.0, seed=0).shape == (3, adata.n_vars)
    sc.pp.filter_genes(adata, min_cells=adata.n_obs)
    with pytest.raises(ValueError, match="genes were removed or added in place"):
        model.sample(3, library_size=1000.0, seed=0)


@pytest.mark.parametrize("piecewise_cutoff", [None, 4])
def test_samples_and_profiles_of_a_backed_anndata(backed, piecewise_cutoff):
    adata, in_memory = backed
    model = scvae.GMVAE(
        adata, n_clusters=3, n_latent=2, n_hidden=8, piecewise_cutoff=piecewise_cutoff
    )
    model.train(max_epochs=2, **QUIET)
    counts = model.sample(50, seed=0)
    assert counts.shape == (50, in_memory.n_vars) and np.isfinite(counts).all()
    if piecewise_cutoff is None:  # a library-scaled mean: the totals drawn from the file's
        totals = np.asarray(in_memory.X.sum(1)).ravel()
        assert counts.sum(1).mean() == pytest.approx(totals.mean(), rel=0.2)
    np.testing.assert_allclose(model.get_cluster_profiles().sum(1), 1, rtol=1e-5)
