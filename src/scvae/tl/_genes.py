"""Genes to model: the most variable ones, as scanpy's pipeline ranks them."""

import scanpy as sc
from anndata import AnnData

from scvae._arguments import whole_number


def check_n_genes(n_genes: int) -> int:
    """``n_genes`` of :func:`select_variable_genes` as an ``int``, or a ``ValueError``."""
    checked = whole_number(n_genes, 0)
    if checked is None:
        raise ValueError(f"n_genes must be 0 (all genes) or a positive integer, got {n_genes!r}.")
    return checked


def select_variable_genes(
    adata: AnnData, n_genes: int, *, target_sum: float | None = None
) -> AnnData:
    """A copy of ``adata`` restricted to its ``n_genes`` most variable genes.

    Genes are ranked as scanpy's standard pipeline ranks them (``flavor="seurat"`` on
    ``normalize_total`` and ``log1p`` of a copy); the returned counts stay raw. That ranking
    can keep a gene or two more on ties, and never keeps genes without variance (all zero),
    so fewer genes come back when fewer vary. The result is always a new AnnData, also when
    every gene is kept, so that changing it never changes ``adata``.

    Parameters
    ----------
    adata
        AnnData with raw counts in ``X``; not modified.
    n_genes
        Number of genes to keep; 0, or at least the number of genes, keeps them all.
        Negative numbers are refused.
    target_sum
        Total count each cell is scaled to before ``log1p`` (``normalize_total``'s
        ``target_sum``); ``None``, scanpy's default, scales to the median total count. The
        ranking, and so the genes kept, depend on it (``1e4`` is the classic choice).

    Returns
    -------
    A new AnnData with the kept genes, in their original order, and the raw counts.

    Raises
    ------
    ValueError
        ``n_genes`` is negative or not a whole number.
    """
    n_genes = check_n_genes(n_genes)
    if n_genes == 0 or n_genes >= adata.n_vars:
        return adata.copy()
    normalised = adata.copy()
    sc.pp.normalize_total(normalised, target_sum=target_sum)
    sc.pp.log1p(normalised)
    sc.pp.highly_variable_genes(normalised, n_top_genes=n_genes, flavor="seurat")
    return adata[:, normalised.var["highly_variable"].to_numpy()].copy()
