"""The synthetic data set with planted cell types: its shape and labels, and its arguments."""

import numpy as np
import pytest

from scvae.datasets import synthetic_counts


def test_synthetic_counts_plant_the_types_and_batches_asked_for():
    adata = synthetic_counts(n_cells=60, n_genes=30, n_clusters=4, n_batches=2, seed=1)
    assert adata.shape == (60, 30) and adata.X.format == "csr"
    assert adata.obs["cell_type"].nunique() == 4 and adata.obs["batch"].nunique() == 2
    np.testing.assert_array_equal(adata.layers["counts"].toarray(), adata.X.toarray())
    assert (np.asarray(adata.X.sum(1)) > 0).all()


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("n_clusters", 0, "n_clusters must be a positive integer, got 0"),
        ("n_batches", 0, "n_batches must be a positive integer"),
        ("n_cells", 10.0, "n_cells must be a positive integer, got 10.0"),
        ("mean_library_size", -5.0, "mean_library_size must be positive, got -5.0"),
        ("inverse_dispersion", float("nan"), "inverse_dispersion must be positive"),
        ("marker_fraction", 1.5, r"marker_fraction must be in \[0, 1\]"),
        ("batch_effect", -1.0, "batch_effect must be at least 0"),
        ("seed", -1, "seed must be an integer of at least 0, a numpy Generator or None"),
    ],
)
def test_an_argument_out_of_range_is_refused_by_name(argument, value, message):
    with pytest.raises(ValueError, match=message):
        synthetic_counts(**{"n_cells": 20, "n_genes": 10, argument: value})


def test_a_generator_or_none_seeds_the_draws():
    first = synthetic_counts(n_cells=20, n_genes=10, seed=np.random.default_rng(3))
    again = synthetic_counts(n_cells=20, n_genes=10, seed=3)
    np.testing.assert_array_equal(first.X.toarray(), again.X.toarray())
    assert synthetic_counts(n_cells=20, n_genes=10, seed=None).shape == (20, 10)
