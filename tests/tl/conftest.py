"""A trained GMVAE shared by the tests of scvae.tl."""

import warnings

import pytest

import scvae
from scvae.datasets import synthetic_counts
from tests.helpers import QUIET


@pytest.fixture(scope="module")
def trained():
    """A GMVAE trained for one epoch on 150 cells, and its AnnData."""
    adata = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=4, n_hidden=16)
    with warnings.catch_warnings():  # one epoch leaves a cluster nearly empty, as it says
        warnings.simplefilter("ignore", UserWarning)
        model.train(max_epochs=1, **QUIET)
    return model, adata
