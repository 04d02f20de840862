"""Views of a GMVAE's clusters: decoded profiles and per-cell probabilities."""

from os import PathLike

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes

from scvae._arguments import whole_number
from scvae._result_keys import DEFAULT_KEY, result_keys
from scvae.model import GMVAE

from ._utils import finish, new_axes, require_gmvae


def cluster_profiles(
    model: GMVAE,
    *,
    n_genes: int = 3,
    ax: Axes | None = None,
    cmap: str = "RdBu_r",
    show: bool | None = None,
    save: str | PathLike | None = None,
) -> Axes:
    """Heat map of the genes that mark each GMVAE cluster in its decoded expression profile.

    Takes :meth:`~scvae.GMVAE.get_cluster_profiles` (a cluster of merged components has their
    mixture's profile) as ``log1p`` of the expression per 10,000 counts, as scanpy's
    ``normalize_total`` and ``log1p`` would; for each cluster the ``n_genes`` genes of the
    largest difference from the mean of the other clusters' (a log fold change that genes
    hardly expressed anywhere cannot win; not already shown for an earlier cluster) are
    drawn, coloured by that expression centred over the clusters.

    Parameters
    ----------
    model
        A trained :class:`~scvae.GMVAE`.
    n_genes
        Genes per cluster.
    ax
        Axes to draw on; by default a new figure.
    cmap
        Colour map of the centred log expression.
    show
        ``True``: call :func:`matplotlib.pyplot.show` at the end; ``None`` (default) or
        ``False``: leave the figure open (a notebook shows it when the cell ends).
    save
        Path to save the figure to.

    Returns
    -------
    The axes.

    Raises
    ------
    ValueError
        A model with one cluster: there is nothing to contrast it with.
    """
    require_gmvae(model, "scvae.pl.cluster_profiles")
    if whole_number(n_genes, 1) is None:
        raise ValueError(f"n_genes must be a positive integer, got {n_genes!r}.")
    profiles = model.get_cluster_profiles()
    n_clusters = len(profiles)
    if n_clusters < 2:
        raise ValueError(
            "The model has one cluster, so no gene marks it against others: cut the "
            "clusters finer first (model.select_clusters(n_clusters=...))."
        )
    log_profiles = np.log1p(profiles.to_numpy() * 1e4)
    others = (log_profiles.sum(0) - log_profiles) / (n_clusters - 1)  # mean of the others
    genes: list[int] = []
    for fold_changes in log_profiles - others:
        new = [g for g in np.argsort(-fold_changes, kind="stable") if g not in genes]
        genes += new[:n_genes]
    matrix = (log_profiles - log_profiles.mean(0))[:, genes]
    width = max(4.0, 0.22 * len(genes) + 1.5)
    ax = new_axes(ax, (width, max(2.5, 0.3 * len(profiles) + 1.2)))
    limit = float(np.abs(matrix).max()) or 1.0
    image = ax.imshow(matrix, aspect="auto", cmap=cmap, vmin=-limit, vmax=limit)
    ax.set_xticks(range(len(genes)), profiles.columns[genes], rotation=90, fontsize=7)
    ax.set_yticks(range(len(profiles)), profiles.index, fontsize=7)
    ax.set_xlabel("gene")
    ax.set_ylabel("cluster")
    ax.set_title("GMVAE cluster profiles")
    ax.get_figure().colorbar(image, ax=ax, label="log1p expression per 10k, centred over clusters")
    finish(ax, show, save)
    return ax


def cluster_probabilities(
    adata: AnnData | GMVAE,
    *,
    ax: Axes | None = None,
    key_added: str | None = None,
    cmap: str = "viridis",
    show: bool | None = None,
    save: str | PathLike | None = None,
) -> Axes:
    """Heat map of the cluster probabilities (q(y | x), summed over the components of each
    cluster): clusters x cells, cells sorted by cluster then confidence.

    Parameters
    ----------
    adata
        AnnData annotated by a :class:`~scvae.GMVAE` (``obsm["scvae_cluster_probabilities"]``),
        or the GMVAE itself: its registered AnnData.
    ax
        Axes to draw on; by default a new figure.
    key_added
        The ``key_added`` the clusters were written with (the probabilities are in
        ``obsm[f"{key_added}_cluster_probabilities"]``): by default ``"scvae"``, or for a
        GMVAE where it last wrote them (``model.key_added_``).
    cmap
        Colour map of the probabilities.
    show
        ``True``: call :func:`matplotlib.pyplot.show` at the end; ``None`` (default) or
        ``False``: leave the figure open (a notebook shows it when the cell ends).
    save
        Path to save the figure to.

    Returns
    -------
    The axes.
    """
    if isinstance(adata, GMVAE):
        key_added = adata.key_added_ if key_added is None else key_added
        adata = adata.adata
    key = result_keys(DEFAULT_KEY if key_added is None else key_added)["probabilities"]
    if not isinstance(adata, AnnData):
        raise TypeError(
            f"scvae.pl.cluster_probabilities draws an AnnData annotated by a GMVAE (or the "
            f"GMVAE), not a {type(adata).__name__}."
        )
    if key not in adata.obsm:
        suffix = "_cluster_probabilities"
        found = [name.removesuffix(suffix) for name in adata.obsm if name.endswith(suffix)]
        raise KeyError(
            f"adata.obsm has no {key!r}: train or annotate with a GMVAE first"
            + (f", or pass key_added= one of {found}." if found else ".")
        )
    probabilities = np.asarray(adata.obsm[key])
    cluster, confidence = probabilities.argmax(1), probabilities.max(1)
    order = np.lexsort((-confidence, cluster))
    n_clusters = probabilities.shape[1]
    ax = new_axes(ax, (7.0, max(2.5, 0.25 * n_clusters + 1.2)))
    image = ax.imshow(
        probabilities[order].T, aspect="auto", cmap=cmap, vmin=0, vmax=1, interpolation="nearest"
    )
    for boundary in np.flatnonzero(np.diff(cluster[order])):
        ax.axvline(boundary + 0.5, color="white", linewidth=0.5)
    ax.set_yticks(range(n_clusters), [str(k) for k in range(n_clusters)], fontsize=7)
    ax.set_xlabel(f"cells, sorted by cluster (n = {adata.n_obs})")
    ax.set_ylabel("cluster")
    ax.set_title("GMVAE cluster probabilities q(y | x)")
    ax.get_figure().colorbar(image, ax=ax, label="probability")
    finish(ax, show, save)
    return ax
