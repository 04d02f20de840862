import numpy as np
import pytest
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


@pytest.mark.parametrize("n_genes", [0, 30, 100, 10])
def test_the_result_is_always_a_copy(n_genes):
    adata = synthetic_counts(n_cells=50, n_genes=30, seed=0)
    original = adata.X.copy()
    selected = select_variable_genes(adata, n_genes)
    assert selected is not adata
    assert (selected.n_vars < 30) == (n_genes == 10)  # 0 or too many keep all genes
    selected.X[:, 0] = 7  # changing the result leaves the input alone
    selected.obs["new"] = 1
    assert (adata.X != original).nnz == 0 and "new" not in adata.obs


def test_a_negative_or_fractional_number_of_genes_is_refused():
    adata = synthetic_counts(n_cells=50, n_genes=30, seed=0)
    for n_genes in (-5, 2.5, True):
        with pytest.raises(ValueError, match=r"n_genes must be 0 \(all genes\) or a positive"):
            select_variable_genes(adata, n_genes)
    assert select_variable_genes(adata, 10.0).var_names.equals(
        select_variable_genes(adata, 10).var_names
    )
