"""fit_model refuses what it cannot fit before the AnnData is touched."""

import pytest

import scvae
from scvae.datasets import synthetic_counts
from tests.helpers import QUIET


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"seed": "x"}, ValueError, "seed must be None or an integer of at least 0, got 'x'"),
        ({"n_clusters": 0}, ValueError, "n_clusters must be a positive integer"),
        ({"likelihood": "nbb"}, ValueError, "nbb"),
    ],
)
def test_fit_model_refuses_bad_options_leaving_the_anndata_as_it_was(options, error, message):
    adata = synthetic_counts(n_cells=60, n_genes=20, seed=0)
    before = (set(adata.uns), set(adata.obs.columns))
    with pytest.raises(error, match=message):
        scvae.tl.fit_model(adata, train_kwargs={"max_epochs": 1}, **options)
    assert (set(adata.uns), set(adata.obs.columns)) == before  # not registered


def test_fit_model_leaves_the_random_state_alone_without_a_seed():
    adata = synthetic_counts(n_cells=60, n_genes=20, seed=0)
    model = scvae.tl.fit_model(adata, seed=None, train_kwargs={"max_epochs": 1, **QUIET})
    assert model.is_trained_
