"""Synthetic count matrices with planted cell types, for tests, examples and benchmarks."""

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from scvae._arguments import integer_at_least, is_real


def synthetic_counts(
    n_cells: int = 1000,
    n_genes: int = 200,
    *,
    n_clusters: int = 5,
    n_batches: int = 1,
    batch_effect: float = 0.0,
    marker_fraction: float = 0.1,
    marker_fold_change: float = 8.0,
    mean_library_size: float = 2000.0,
    inverse_dispersion: float = 5.0,
    seed: int | np.random.Generator | None = 0,
) -> AnnData:
    """Negative binomial counts from ``n_clusters`` planted expression profiles.

    Each cluster up-regulates its own random set of marker genes by ``marker_fold_change``
    over a shared log-normal baseline profile; each batch multiplies every gene by
    ``exp(N(0, batch_effect^2))``. Library sizes are log-normal around ``mean_library_size``.

    Parameters
    ----------
    n_cells, n_genes
        Shape of the matrix.
    n_clusters
        Number of planted cell types (``obs["cell_type"]``, balanced).
    n_batches
        Number of batches (``obs["batch"]``), assigned independently of cell type.
    batch_effect
        Standard deviation of the per-batch log fold change of each gene.
    marker_fraction
        Fraction of genes that are markers of each cluster.
    marker_fold_change
        Up-regulation of a cluster's marker genes.
    mean_library_size
        Typical total count per cell.
    inverse_dispersion
        NB inverse dispersion theta of every gene.
    seed
        Random seed, or a :class:`numpy.random.Generator` to draw from (``None``: fresh
        entropy).

    Returns
    -------
    AnnData with raw counts in ``X`` (CSR, float32) and in ``layers["counts"]``.

    Raises
    ------
    ValueError
        A size that is not a positive integer, or a rate, fold change, library size or
        dispersion out of its range.
    """
    _check_arguments(locals())
    rng = np.random.default_rng(seed)
    baseline = rng.normal(0.0, 1.0, n_genes)
    log_profiles = np.tile(baseline, (n_clusters, 1))
    n_markers = max(1, int(marker_fraction * n_genes))
    for k in range(n_clusters):
        markers = rng.choice(n_genes, n_markers, replace=False)
        log_profiles[k, markers] += np.log(marker_fold_change)
    log_batch = rng.normal(0.0, batch_effect, (n_batches, n_genes)) if batch_effect else None
    cell_type = rng.permutation(np.arange(n_cells) % n_clusters)
    batch = rng.integers(0, n_batches, n_cells)
    log_mean = log_profiles[cell_type]
    if log_batch is not None:
        log_mean = log_mean + log_batch[batch]
    scale = np.exp(log_mean - log_mean.max(1, keepdims=True))
    scale /= scale.sum(1, keepdims=True)
    library = rng.lognormal(np.log(mean_library_size), 0.3, n_cells)
    mu = scale * library[:, None]
    rates = rng.gamma(inverse_dispersion, mu / inverse_dispersion)
    counts = sp.csr_matrix(rng.poisson(rates).astype(np.float32))
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical([f"type_{k}" for k in cell_type]),
            "batch": pd.Categorical([f"batch_{b}" for b in batch]),
        },
        index=[f"cell_{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"gene_{j}" for j in range(n_genes)])
    adata = AnnData(counts, obs=obs, var=var)
    adata.layers["counts"] = counts.copy()
    return adata


def _check_arguments(arguments: dict) -> None:
    """Refuse, naming it, an argument of :func:`synthetic_counts` out of its range."""
    for name in ("n_cells", "n_genes", "n_clusters", "n_batches"):
        if not integer_at_least(arguments[name], 1):
            raise ValueError(f"{name} must be a positive integer, got {arguments[name]!r}.")
    ranges = {
        "batch_effect": (0.0, False, "at least 0"),
        "marker_fraction": (0.0, False, "in [0, 1]"),
        "marker_fold_change": (0.0, True, "positive"),
        "mean_library_size": (0.0, True, "positive"),
        "inverse_dispersion": (0.0, True, "positive"),
    }
    for name, (low, strict, wanted) in ranges.items():
        value = arguments[name]
        valid = is_real(value) and np.isfinite(value) and (value > low if strict else value >= low)
        if not valid or (name == "marker_fraction" and value > 1):
            raise ValueError(f"{name} must be {wanted}, got {value!r}.")
    seed = arguments["seed"]
    if not (seed is None or isinstance(seed, np.random.Generator) or integer_at_least(seed, 0)):
        raise ValueError(
            f"seed must be an integer of at least 0, a numpy Generator or None, got {seed!r}."
        )
