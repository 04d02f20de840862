"""Shared fixtures: small synthetic count data, and quiet, quick training defaults."""

import anndata as ad
import pytest
import scvi
import torch

import scvae
from scvae.datasets import synthetic_counts

scvi.settings.verbosity = 40
scvi.settings.progress_bar_style = "tqdm"


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state (Python, NumPy, torch: scvi-tools' seed)."""
    scvi.settings.seed = 0
    yield
    torch.set_grad_enabled(True)


@pytest.fixture
def adata():
    """300 cells x 60 genes, 3 planted cell types, registered-ready raw counts."""
    return synthetic_counts(n_cells=300, n_genes=60, n_clusters=3, seed=0)


@pytest.fixture
def backed(adata, tmp_path):
    """``adata`` written to an h5ad, opened ``backed="r"`` and registered, and read in memory."""
    path = tmp_path / "counts.h5ad"
    adata.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    scvae.setup_anndata(backed)
    return backed, ad.read_h5ad(path)
