"""Placing the GMVAE's mixture components on the latent means."""

import numpy as np
import pytest
import scvi
from sklearn.metrics import adjusted_rand_score

import scvae
from scvae.train import ComponentInitialization
from tests.helpers import QUIET


def unequal_blobs(sizes=(600, 60, 20), spreads=(1.0, 0.3, 0.1), n_dims=5, seed=0):
    """Well-separated Gaussian blobs of very different sizes and spreads."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.eye(len(sizes), n_dims)
    points = [
        rng.normal(c, s, size=(n, n_dims)) for c, s, n in zip(centres, spreads, sizes, strict=True)
    ]
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return np.concatenate(points), labels, centres


@pytest.mark.parametrize("method", ["gaussian_mixture", "kmeans"])
def test_components_sit_on_clusters_of_unequal_size(method):
    latents, labels, centres = unequal_blobs()
    assignment, means, scales, weights = ComponentInitialization(1, method=method).fit(latents, 3)
    assert adjusted_rand_score(labels, assignment) == 1.0
    order = [int(np.argmin(np.linalg.norm(means - c, axis=1))) for c in centres]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(means[order], centres, atol=0.2)
    np.testing.assert_allclose(scales[order].mean(1), [1.0, 0.3, 0.1], rtol=0.15)
    np.testing.assert_allclose(weights[order], np.array([600, 60, 20]) / 680, atol=1e-3)


def test_the_mixture_is_fitted_on_a_subsample_but_every_cell_is_assigned():
    latents, labels, _ = unequal_blobs(sizes=(3000, 1000, 500))
    placement = ComponentInitialization(1, max_cells=400, n_init=2)
    assignment, *_ = placement.fit(latents, 3)
    assert assignment.shape == (4500,)
    assert adjusted_rand_score(labels, assignment) == 1.0


def test_spare_components_when_there_are_fewer_distinct_cells_than_components():
    latents = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 9.0]]), 4, axis=0)
    assignment, means, scales, weights = ComponentInitialization(1).fit(latents, 5)
    assert set(assignment) <= {0, 1, 2}
    assert means.shape == scales.shape == (5, 2)
    assert np.isfinite(means).all() and (scales > 0).all()
    assert weights.sum() == pytest.approx(1.0) and (weights[3:] < 0.01).all()


def test_an_unknown_method_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"'spectral'.*gaussian_mixture"):
        ComponentInitialization(1, method="spectral")


def test_a_learned_cluster_prior_starts_from_the_mixture_weights(monkeypatch):
    fitted = []
    fit = ComponentInitialization.fit
    monkeypatch.setattr(
        ComponentInitialization,
        "fit",
        lambda self, *args: fitted.append(fit(self, *args)) or fitted[-1],
    )
    adata = scvae.datasets.synthetic_counts(n_cells=300, n_genes=50, n_clusters=3, seed=0)
    scvae.setup_anndata(adata, layer="counts")
    scvi.settings.seed = 0
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=4, n_hidden=32, prior="learned")
    # Placement at the end of the last epoch: p(y) is then exactly the mixture's weights.
    model.train(max_epochs=3, component_init_epoch=3, **QUIET)
    ((_, means, _, weights),) = fitted
    np.testing.assert_allclose(model.module.prior_means.detach().numpy(), means, rtol=1e-6)
    np.testing.assert_allclose(
        model.module.log_prior_y().exp().detach().numpy(), weights, rtol=1e-5
    )
