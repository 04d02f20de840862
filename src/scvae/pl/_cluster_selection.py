"""Why a GMVAE chose its number of clusters: the separability of each merge."""

from os import PathLike

import numpy as np
from matplotlib.axes import Axes

from scvae.model import GMVAE, SEPARABILITY_THRESHOLD

from ._utils import finish, new_axes, require_gmvae


def cluster_selection(
    model: GMVAE,
    *,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | PathLike | None = None,
) -> Axes:
    """Separability of the two groups merged at each step, against the number of clusters.

    Reads :attr:`~scvae.GMVAE.cluster_selection_` (every trained GMVAE has one): the
    components are merged pairwise, least separable pair first (see
    :class:`~scvae.model.ClusterSelection`). A point at *k* clusters is the separability of
    the pair whose merge left *k* groups. Merging stops at the first pair at or above the
    cut's threshold (dashed line): the groups left then are the clusters (vertical line),
    and the merges after it (blue) only build the hierarchy above them. A fixed-K model, or
    a cut into a number of clusters (:meth:`~scvae.GMVAE.select_clusters`), is cut where
    that number falls; the dotted line is then :data:`~scvae.model.SEPARABILITY_THRESHOLD`,
    where ``n_clusters="auto"`` would cut.

    Parameters
    ----------
    model
        A trained :class:`~scvae.GMVAE`.
    ax
        Axes to draw on; by default a new figure.
    show
        ``True``: call :func:`matplotlib.pyplot.show` at the end; ``None`` (default) or
        ``False``: leave the figure open (a notebook shows it when the cell ends).
    save
        Path to save the figure to.

    Returns
    -------
    The axes.
    """
    require_gmvae(model, "scvae.pl.cluster_selection")
    selection = model.cluster_selection_
    if selection is None:
        raise ValueError("The model has no cluster selection yet: call model.train() first.")
    merges = selection.merges
    ax = new_axes(ax, (5.0, 3.2))
    n_after = merges["n_clusters"].to_numpy()
    separability = merges["separability"].to_numpy()
    merged = n_after >= selection.n_clusters
    for points, colour, label in (
        (merged, "tab:grey", "merged"),
        (~merged, "tab:blue", "kept apart"),
    ):
        if points.any():
            ax.plot(n_after[points], separability[points], "o", color=colour, label=label)
    cut = f"cut at {selection.threshold:.2f}"
    ax.axhline(selection.threshold, linestyle="--", color="black", linewidth=1, label=cut)
    if not np.isclose(selection.threshold, SEPARABILITY_THRESHOLD):
        default = f"auto's threshold, {SEPARABILITY_THRESHOLD:.2f}"
        ax.axhline(SEPARABILITY_THRESHOLD, linestyle=":", color="black", linewidth=1, label=default)
    clusters = f"{selection.n_clusters} clusters"
    ax.axvline(selection.n_clusters, color="tab:red", linewidth=1, label=clusters)
    ax.set_xticks(np.unique(np.r_[1, selection.n_clusters, len(merges) + 1]))
    ax.set_xlabel("clusters left after the merge")
    ax.set_ylabel("separability of the merged pair")
    ax.set_title(f"GMVAE cluster selection: {selection.n_clusters} clusters")
    ax.legend(frameon=False, fontsize=8)
    finish(ax, show, save)
    return ax
