import numpy as np
import scanpy as sc

from scvae.datasets import synthetic_counts
from scvae.tl import select_variable_genes


def scanpy_choice(adata, n_genes, target_sum):
    normalised = adata.copy()
    sc.pp.normalize_total(normalised, target_sum=target_sum)
    sc.pp.log1p(normalised)
    sc.pp.highly_variable_genes(normalised, n_top_genes=n_genes, flavor="seurat")
    return list(adata.var_names[normalised.var["highly_variable"].to_numpy()])


def test_keeps_scanpys_most_variable_genes_with_raw_counts():
    adata = synthetic_counts(n_cells=300, n_genes=400, seed=1)
    original = adata.X.copy()
    selected = select_variable_genes(adata, 100)
    assert list(selected.var_names) == scanpy_choice(adata, 100, None)
    np.testing.assert_array_equal(selected.X.toarray(), adata[:, selected.var_names].X.toarray())
    assert (adata.X != original).nnz == 0  # the input is not modified


def test_the_target_sum_decides_the_ranking_as_in_scanpy():
    adata = synthetic_counts(n_cells=300, n_genes=400, mean_library_size=500.0, seed=2)
    selected = select_variable_genes(adata, 100, target_sum=1e4)
    assert list(selected.var_names) == scanpy_choice(adata, 100, 1e4)
    assert set(selected.var_names) != set(select_variable_genes(adata, 100).var_names)


def test_zero_or_too_many_genes_keep_them_all():
    adata = synthetic_counts(n_cells=50, n_genes=30, seed=0)
    assert select_variable_genes(adata, 0) is adata
    assert select_variable_genes(adata, 30) is adata
