"""scvae.tl.evaluate_model."""

import random

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from scvae.tl import evaluate_model


def test_evaluate_model_gives_the_same_numbers_for_the_same_seed(trained):
    model, adata = trained
    first = evaluate_model(model, adata, n_mc_samples=3)
    assert evaluate_model(model, adata, n_mc_samples=3) == first
    assert evaluate_model(model, adata, n_mc_samples=3, seed=0) == first
    other = evaluate_model(model, adata, n_mc_samples=3, seed=1)
    assert other["log_likelihood"] != first["log_likelihood"]


def test_evaluate_model_scores_the_clusters_against_the_labels(trained):
    model, adata = trained
    metrics = evaluate_model(model, adata, labels_key="cell_type", n_mc_samples=2)
    labels, clusters = adata.obs["cell_type"].to_numpy(), model.predict(adata)
    assert metrics["ari"] == pytest.approx(adjusted_rand_score(labels, clusters))
    assert metrics["nmi"] == pytest.approx(normalized_mutual_info_score(labels, clusters))
    assert metrics["ari"] != pytest.approx(metrics["nmi"])  # so that a swap would show


def test_evaluate_model_leaves_the_global_random_state_alone(trained):
    model, adata = trained
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 - the state a user's session may rely on
    random.seed(123)
    expected = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    evaluate_model(model, adata, n_mc_samples=2)
    after = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert torch.equal(after[0], expected[0])
    np.testing.assert_array_equal(after[1], expected[1])
    assert after[2] == expected[2]


def test_evaluate_model_refuses_cells_without_labels(trained):
    model, adata = trained
    cells = adata.copy()
    cells.obs["cell_type"] = cells.obs["cell_type"].astype(object)
    cells.obs.iloc[:4, cells.obs.columns.get_loc("cell_type")] = np.nan
    with pytest.raises(ValueError, match=r"labels_key='cell_type': 4 of 150 cells have no label"):
        evaluate_model(model, cells, labels_key="cell_type", n_mc_samples=2)
    labelled = cells[cells.obs["cell_type"].notna()].copy()
    metrics = evaluate_model(model, labelled, labels_key="cell_type", n_mc_samples=2)
    assert metrics["n_cells"] == 146 and 0 <= metrics["nmi"] <= 1


def test_evaluate_model_refuses_no_importance_samples(trained):
    model, adata = trained
    for n_mc_samples in (0, True, 2.5):
        with pytest.raises(ValueError, match="n_mc_samples must be a positive integer"):
            evaluate_model(model, adata, n_mc_samples=n_mc_samples)
    assert evaluate_model(model, adata, n_mc_samples=2.0) == evaluate_model(
        model, adata, n_mc_samples=2
    )
