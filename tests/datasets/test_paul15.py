"""The bundled Paul et al. (2015) data set."""

import numpy as np
import pytest
import scipy.sparse as sp

from scvae.datasets import paul15


def test_paul15_counts_genes_and_labels():
    adata = paul15()
    assert adata.shape == (2730, 3451)
    assert sp.issparse(adata.X) and adata.X.format == "csr"
    assert adata.X.dtype == np.float32 and adata.X.indices.dtype == np.int32
    values = adata.X.data
    assert values.min() >= 0 and np.array_equal(values, np.round(values))
    assert adata.X.sum() > 0
    for column in ("label", "paul15_clusters"):
        assert adata.obs[column].dtype == "category"
        assert adata.obs[column].nunique() == 19
    assert (adata.obs["label"] == adata.obs["paul15_clusters"]).all()
    assert {"Gata1", "Klf1", "Mpo", "Elane"} <= set(adata.var_names)
    assert adata.var_names.is_unique


def test_paul15_root_cell_drives_scanpys_pseudotime():
    sc = pytest.importorskip("scanpy")
    adata = paul15()
    assert adata.uns["iroot"] == 840 and isinstance(adata.uns["iroot"], int)
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=20)
    sc.pp.neighbors(adata)
    sc.tl.diffmap(adata)
    sc.tl.dpt(adata)  # refused a one-element array as the root
    assert adata.obs["dpt_pseudotime"].iloc[840] == 0
