"""Shared fixtures: small synthetic count data, and quiet, quick training defaults."""

import pytest
import scvi

from scvae.datasets import synthetic_counts

scvi.settings.verbosity = 40
scvi.settings.progress_bar_style = "tqdm"


@pytest.fixture
def adata():
    """300 cells x 60 genes, 3 planted cell types, registered-ready raw counts."""
    return synthetic_counts(n_cells=300, n_genes=60, n_clusters=3, seed=0)
