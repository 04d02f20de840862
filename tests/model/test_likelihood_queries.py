"""The likelihood queries of scvae's models: ``get_likelihood_parameters`` and
``get_latent_library_size`` replace scvi-tools' versions (those read scVI's likelihoods and
its latent library); what scvi-tools' assumptions do not cover is refused with the reason."""

import inspect

import numpy as np
import pytest
import torch
from scvi.model.base import VAEMixin

import scvae
from scvae.datasets import synthetic_counts
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
    model = scvae.VAE(adata, likelihood="zinb")
    torch.manual_seed(0)
    draws = model.get_likelihood_parameters(indices=np.arange(10), n_samples=3)
    assert draws["mean"].shape == (3, 10, adata.n_vars)
    assert not np.allclose(draws["mean"][0], draws["mean"][1])  # z differs between draws
    # give_mean: the same draws (same seed), averaged over z, for every parameter.
    torch.manual_seed(0)
    averaged = model.get_likelihood_parameters(indices=np.arange(10), n_samples=3, give_mean=True)
    assert set(averaged) == set(draws) == {"mean", "dispersions", "dropout"}
    for name, values in draws.items():
        assert averaged[name].shape == (10, adata.n_vars)
        np.testing.assert_allclose(averaged[name], values.mean(0), rtol=1e-6)
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


def test_draws_over_all_cells_are_a_frame_of_draws_by_gene(adata):
    """``n_samples_overall`` draws rows from the cells' posteriors (scvi-tools 1.4 indexed
    them by the cells and failed)."""
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=3, n_hidden=16)
    model.train(max_epochs=1, enable_progress_bar=False)
    draws = model.get_normalized_expression(n_samples_overall=7)
    assert draws.shape == (7, adata.n_vars)
    assert list(draws.columns) == list(adata.var_names)
    genes = list(adata.var_names[[4, 1]])
    subset = model.get_normalized_expression(n_samples_overall=5, gene_list=genes, indices=[0, 2])
    assert list(subset.columns) == list(adata.var_names[[1, 4]])  # in the AnnData's order
    assert model.get_normalized_expression(n_samples_overall=3, return_numpy=True).shape == (
        3,
        adata.n_vars,
    )


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


def _planted_markers(adata) -> list[np.ndarray]:
    """The genes of each planted type at least 4 times as expressed (normalised) as in any
    other type, read from the counts."""
    counts = adata.X.toarray()
    normalised = counts / counts.sum(1, keepdims=True)
    types = adata.obs["cell_type"].to_numpy()
    means = np.array([normalised[types == t].mean(0) for t in np.unique(types)])
    return [np.flatnonzero(means[k] > 4 * np.delete(means, k, 0).max(0)) for k in range(len(means))]


def test_gene_correlations_of_a_negative_binomial_gmvae():
    adata = synthetic_counts(
        n_cells=300, n_genes=60, n_clusters=3, marker_fraction=0.2, marker_fold_change=10, seed=0
    )
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=5, n_hidden=64)
    model.train(max_epochs=60, enable_progress_bar=False)
    correlations = model.get_feature_correlation_matrix(n_samples=2)
    assert list(correlations.index) == list(correlations.columns) == list(adata.var_names)
    correlations = correlations.to_numpy()
    np.testing.assert_allclose(correlations, correlations.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(correlations), 1.0, rtol=1e-6)
    assert ((correlations >= -1 - 1e-9) & (correlations <= 1 + 1e-9)).all()
    # The marker genes of one planted type rise and fall together across the cells, more
    # than with the markers of the other types.
    markers = _planted_markers(adata)
    assert all(len(genes) >= 3 for genes in markers)
    for k, genes in enumerate(markers):
        within = correlations[np.ix_(genes, genes)][~np.eye(len(genes), dtype=bool)].mean()
        across = max(
            correlations[np.ix_(genes, other)].mean() for j, other in enumerate(markers) if j != k
        )
        assert within > 0.15 and within > across + 0.15, (k, within, across)


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


@pytest.mark.parametrize("model_cls", [scvae.VAE, scvae.GMVAE])
@pytest.mark.parametrize(
    "name", ["get_elbo", "get_reconstruction_error", "get_marginal_ll", "get_latent_representation"]
)
def test_queries_take_scvi_tools_arguments_in_its_order(model_cls, name):
    """Positional arguments mean what they mean in scvi-tools (a fourth one of get_elbo was
    return_mean here and dataloader there)."""
    ours = list(inspect.signature(getattr(model_cls, name)).parameters)
    assert ours == list(inspect.signature(getattr(VAEMixin, name)).parameters)


def test_options_left_out_are_not_passed_to_scvi_tools(adata, monkeypatch):
    """scvi-tools 1.3's queries take no ``data_loader_kwargs``: what the user leaves out is
    not passed on."""
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    received = {}

    def recorded(self, **kwargs):
        received.update(kwargs)
        return torch.zeros(())

    monkeypatch.setattr(VAEMixin, "get_elbo", recorded)
    model.get_elbo()
    assert "dataloader" not in received and "data_loader_kwargs" not in received
    model.get_elbo(data_loader_kwargs={"num_workers": 0})
    assert received["data_loader_kwargs"] == {"num_workers": 0}
