"""Placing the GMVAE's mixture components on the latent means."""

import numpy as np
import pytest
import scvi
import torch
from sklearn.metrics import adjusted_rand_score

import scvae
from scvae.data import RegisteredTensors
from scvae.train import ComponentInitialization
from scvae.train._component_initialization import _fit_cluster_encoder, match_components
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


@pytest.mark.parametrize("method", ["kmeans", "gaussian_mixture"])
def test_the_largest_seed_places_the_components(method):
    latents, labels, _ = unequal_blobs(sizes=(300, 100, 50))
    placement = ComponentInitialization(1, seed=2**32 - 1, method=method)  # numpy's largest
    assert adjusted_rand_score(labels, placement.fit(latents, 3)[0]) == 1.0


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


def test_a_negative_placement_epoch_is_refused():
    with pytest.raises(ValueError, match=r"must be >= 0.*\[5, -1\]"):
        ComponentInitialization([5, -1])


def record_fits(monkeypatch) -> list:
    """Make every ``ComponentInitialization.fit`` call append its result to the returned list."""
    fitted = []
    fit = ComponentInitialization.fit
    monkeypatch.setattr(
        ComponentInitialization,
        "fit",
        lambda self, *args, **kwargs: fitted.append(fit(self, *args, **kwargs)) or fitted[-1],
    )
    return fitted


def small_gmvae(**options) -> scvae.GMVAE:
    adata = scvae.datasets.synthetic_counts(n_cells=300, n_genes=50, n_clusters=3, seed=0)
    scvae.setup_anndata(adata, layer="counts")
    scvi.settings.seed = 0
    return scvae.GMVAE(adata, n_clusters=3, n_latent=4, n_hidden=32, **options)


def test_a_learned_cluster_prior_starts_from_the_mixture_weights(monkeypatch):
    fitted = record_fits(monkeypatch)
    model = small_gmvae(prior="learned")
    # Placement at the end of the last epoch: p(y) is then exactly the mixture's weights.
    model.train(max_epochs=3, component_init_epochs=3, **QUIET)
    ((_, means, _, weights),) = fitted
    prior_means = model.module.prior.means.detach().cpu().numpy()
    # The fitted components are renumbered after the ones they replace: find that order.
    order = [int(np.argmin(np.abs(means - row).sum(1))) for row in prior_means]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(prior_means, means[order], rtol=1e-6)
    np.testing.assert_allclose(
        model.module.prior.log_weights().exp().detach().cpu().numpy(), weights[order], rtol=1e-5
    )


def test_each_placement_epoch_fits_the_mixture_once(monkeypatch):
    fitted = record_fits(monkeypatch)
    small_gmvae().train(max_epochs=4, component_init_epochs=[1, 3, 0], **QUIET)
    assert len(fitted) == 2


def test_placing_again_keeps_each_component_on_its_cells():
    current = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    # A fit that found the same clusters, numbered differently and slightly moved.
    means = current[[2, 0, 1]] + 0.1
    scales = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    weights = np.array([0.5, 0.3, 0.2])
    assignment = np.array([0, 0, 1, 2, 2])  # cells near current components 2, 2, 0, 1, 1
    matched = match_components((assignment, means, scales, weights), current)
    np.testing.assert_array_equal(matched[0], [2, 2, 0, 1, 1])
    np.testing.assert_allclose(matched[1], current + 0.1)
    np.testing.assert_allclose(matched[2], scales[[1, 2, 0]])
    np.testing.assert_allclose(matched[3], weights[[1, 2, 0]])


def test_a_placement_after_the_last_epoch_fails_before_training():
    model = small_gmvae()
    with pytest.raises(ValueError, match=r"\[5\] are beyond max_epochs=3"):
        model.train(max_epochs=3, component_init_epochs=[2, 5], **QUIET)
    assert not model.is_trained_


def test_an_unknown_placement_method_fails_before_training():
    model = small_gmvae()
    with pytest.raises(ValueError, match=r"'spectral' \(component_init_method.*kmeans"):
        model.train(max_epochs=2, component_init_method="spectral", **QUIET)
    assert not model.is_trained_


@pytest.mark.parametrize("inference", ["classifier", "per_component"])
def test_refitting_q_y_leaves_out_a_last_minibatch_of_one_cell(inference):
    # 129 training cells at 128 a minibatch: batch norm cannot take the last one alone.
    adata = scvae.datasets.synthetic_counts(n_cells=129, n_genes=30, n_clusters=3, seed=0)
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, inference=inference, n_latent=4, n_hidden=16)
    model.train(max_epochs=2, train_size=1.0, component_init_epochs=[1], **QUIET)
    assert model.is_trained_


@pytest.mark.parametrize("inference", ["classifier", "per_component"])
def test_a_refitted_q_y_agrees_with_the_placement_in_evaluation_mode(inference):
    """q(y|x) is fitted with batch statistics; used, it normalises with running statistics,
    which move by 1% a minibatch and must be re-estimated for the refitted weights."""
    adata = scvae.datasets.synthetic_counts(n_cells=200, n_genes=30, n_clusters=3, seed=0)
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, inference=inference, n_latent=2, n_hidden=16)
    dataset = RegisteredTensors(model.adata_manager, np.arange(adata.n_obs))
    planted = np.asarray(adata.obs["cell_type"].cat.codes)
    model.module.train()  # as during training
    agreement = _fit_cluster_encoder(model.module, dataset, planted, 64, max_passes=30)
    model.module.eval()
    with torch.no_grad():
        assigned = model.module.qy_logits(dataset[list(range(adata.n_obs))]).argmax(-1)
    assert (assigned.numpy() == planted).mean() == pytest.approx(agreement)
    assert agreement >= 0.95
