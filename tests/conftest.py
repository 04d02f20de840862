"""Shared fixtures: small synthetic count data (in memory, backed, or as the command line's
input file), quiet, quick training defaults, and a model saved by the command line."""

import anndata as ad
import pytest
import scvi
import torch

import scvae
from scvae.cli import main
from scvae.datasets import synthetic_counts
from tests.helpers import FAST

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


@pytest.fixture
def counts_file(tmp_path):
    """150 cells x 40 genes, 3 planted cell types, written to ``tmp_path / "in.h5ad"``."""
    adata = synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
    path = tmp_path / "in.h5ad"
    adata.write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def saved_gmvae(tmp_path_factory):
    """A 3-cluster GMVAE trained by ``scvae train --save-model`` on 150 cells, and the h5ad."""
    directory = tmp_path_factory.mktemp("saved_gmvae")
    path = directory / "in.h5ad"
    synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0).write_h5ad(path)
    args = ["train", str(path), "-o", str(directory / "out.h5ad"), "--model", "gmvae"]
    assert main([*args, "--n-clusters", "3", *FAST, "--save-model", str(directory / "m")]) == 0
    return directory / "m", path
