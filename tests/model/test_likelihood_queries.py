"""The likelihood queries of scvae's models: ``get_likelihood_parameters`` and
``get_latent_library_size`` replace scvi-tools' versions (those read scVI's likelihoods and
its latent library); what scvi-tools' assumptions do not cover is refused with the reason."""

import numpy as np
import pytest
import torch

import scvae
from tests.helpers import mostly_zeros


def _total_counts(adata) -> np.ndarray:
    return np.asarray(adata.X.sum(axis=1)).reshape(-1, 1)


@pytest.mark.parametrize(
    ("model_cls", "likelihood", "keys"),
    [
        (scvae.VAE, "nb", {"mean", "dispersions"}),
        (scvae.VAE, "zinb", {"mean", "dispersions", "dropout"}),
        (scvae.GMVAE, "poisson", {"mean"}),
        (scvae.GMVAE, "zip", {"mean", "dropout"}),
    ],
)
def test_parameters_are_per_cell_and_gene_and_the_means_add_up_to_the_library(
    adata, model_cls, likelihood, keys
):
    scvae.setup_anndata(adata)
    model = model_cls(adata, likelihood=likelihood)
    parameters = model.get_likelihood_parameters()
    assert set(parameters) == keys
    assert all(value.shape == adata.shape for value in parameters.values())
    # The decoder scales its normalised expression by the observed total count.
    np.testing.assert_allclose(
        parameters["mean"].sum(1, keepdims=True), _total_counts(adata), rtol=1e-4
    )
    if "dispersions" in parameters:  # dispersion="gene": one value per gene, in every cell
        dispersions = parameters["dispersions"]
        np.testing.assert_array_equal(dispersions, np.broadcast_to(dispersions[0], adata.shape))
    if "dropout" in parameters:
        assert np.all((parameters["dropout"] > 0) & (parameters["dropout"] < 1))


def test_draws_of_z_have_their_own_axis_unless_averaged(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata)
    draws = model.get_likelihood_parameters(indices=np.arange(10), n_samples=3)
    assert draws["mean"].shape == (3, 10, adata.n_vars)
    averaged = model.get_likelihood_parameters(indices=np.arange(10), n_samples=3, give_mean=True)
    assert averaged["mean"].shape == (10, adata.n_vars)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        model.get_likelihood_parameters(n_samples=0)


def test_the_per_component_gmvae_gives_its_components_and_their_weights(adata):
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=3, inference="per_component")
    parameters = model.get_likelihood_parameters()
    assert parameters["component_mean"].shape == (3, *adata.shape)
    np.testing.assert_allclose(parameters["component_weights"].sum(1), 1.0, rtol=1e-5)
    expected = np.einsum(
        "ck,kcg->cg", parameters["component_weights"], parameters["component_mean"]
    )
    np.testing.assert_allclose(parameters["mean"], expected, rtol=1e-4)


def test_the_piecewise_likelihood_gives_its_class_probabilities(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, likelihood="poisson", piecewise_cutoff=2)
    probabilities = model.get_likelihood_parameters()["class_probabilities"]
    assert probabilities.shape == (3, *adata.shape)
    np.testing.assert_allclose(probabilities.sum(0), 1.0, rtol=1e-5)


def test_the_library_size_is_the_observed_total_count_for_sparse_counts_too(adata):
    adata = mostly_zeros(adata)
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=3)
    np.testing.assert_allclose(model.get_latent_library_size(), _total_counts(adata))
    subset = model.get_latent_library_size(indices=[5, 7], give_mean=False)
    np.testing.assert_allclose(subset, _total_counts(adata)[[5, 7]])
    loader = model._query_loader(adata, indices=[5, 7])
    np.testing.assert_allclose(model.get_latent_library_size(dataloader=loader), subset)
    with pytest.raises(ValueError, match="not both"):
        model.get_likelihood_parameters(adata, dataloader=loader)


def test_a_model_without_a_library_size_says_so(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, scale_by_library=False)
    with pytest.raises(ValueError, match="scale_by_library=False"):
        model.get_latent_library_size()


def test_importance_weights_are_refused_before_any_work(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=3, n_hidden=16)
    model.train(max_epochs=1, enable_progress_bar=False)
    with pytest.raises(NotImplementedError, match="weights='uniform'"):
        model.get_normalized_expression(weights="importance", n_samples_overall=10)
    with pytest.raises(NotImplementedError, match="weights='uniform'"):  # also positional
        model.get_normalized_expression(None, None, None, None, 1, 1, None, "importance")
    with pytest.raises(NotImplementedError, match="weights='uniform'"):
        model.differential_expression(groupby="cell_type", weights="importance")
    with pytest.raises(NotImplementedError, match="standard normal prior"):
        model.get_importance_weights(adata, None, None, None, None)
    assert model.get_normalized_expression(weights="uniform").shape == adata.shape


@pytest.mark.parametrize(
    ("model_cls", "options", "reason"),
    [
        (scvae.VAE, {"likelihood": "poisson"}, "likelihood is 'poisson'"),
        (scvae.VAE, {"likelihood": "nb", "piecewise_cutoff": 2}, "piecewise categorical"),
        (scvae.GMVAE, {"inference": "per_component"}, "per_component"),
    ],
)
def test_gene_correlations_need_a_negative_binomial_decoded_once(adata, model_cls, options, reason):
    scvae.setup_anndata(adata)
    model = model_cls(adata, n_latent=3, n_hidden=16, **options)
    model.train(max_epochs=1, enable_progress_bar=False)
    with pytest.raises(NotImplementedError, match=reason):
        model.get_feature_correlation_matrix()


def test_gene_correlations_of_a_negative_binomial_gmvae(adata):
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=16)
    model.train(max_epochs=1, enable_progress_bar=False)
    correlations = model.get_feature_correlation_matrix(n_samples=2)
    assert correlations.shape == (adata.n_vars, adata.n_vars)
    np.testing.assert_allclose(np.diag(correlations), 1.0, rtol=1e-6)


def test_the_marginal_log_likelihood_is_a_mean_over_cells_whatever_the_minibatches(adata):
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=2, n_hidden=16)
    model.train(max_epochs=2, enable_progress_bar=False)
    for batch_size in (128, 299):  # 300 cells: a last minibatch of 44 cells, then of 1
        torch.manual_seed(0)
        mean = model.get_marginal_ll(n_mc_samples=5, batch_size=batch_size)
        torch.manual_seed(0)
        values = model.get_marginal_ll(n_mc_samples=5, batch_size=batch_size, return_mean=False)
        assert isinstance(values, np.ndarray) and values.shape == (adata.n_obs,)
        assert isinstance(mean, float) and mean == pytest.approx(values.mean(), rel=1e-6)
