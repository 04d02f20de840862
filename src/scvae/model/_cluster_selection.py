"""How many clusters the data hold: merging GMVAE components whose cells the counts cannot
tell apart.

A GMVAE fitted with more components than the data hold splits cell types over several
components. Two groups of components are told apart by the counts when the cells of each
are better explained by its own decoded expression than by the other's: for a cell with
counts :math:`x`, the log-likelihood under a group :math:`G` of components is
:math:`\\log \\sum_{j \\in G} w_j\\, p_\\theta(x \\mid z = \\mu_j)` (its components' means
decoded with the cell's library size, weighted by their sizes). The *separability* of two
groups is the smaller of the two shares of their cells that prefer their own group (each
share estimated as (preferring + 1) / (cells + 2), so that a handful of cells is not yet a
cluster). Starting
from the components, the two least separable groups are merged, again and again, down to one
group; the number of clusters is the number of groups left when every pair of groups is at
least ``threshold`` separable. The merges form a hierarchy of the clusters (a dendrogram).
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import cophenet, dendrogram, linkage
from scipy.special import logsumexp

from scvae._arguments import is_real, whole_number

#: Separability two groups of components need to count as two clusters: about this share of
#: the cells of each (Laplace's estimate, (preferring + 1) / (cells + 2)) is better explained
#: by its own group's decoded expression. At 0.95 a group needs at least 18 evaluated cells.
SEPARABILITY_THRESHOLD = 0.95
#: Cells per component whose likelihoods are evaluated (all of them up to this number, else
#: drawn at random): the merging reads ``components x cells per component x components``
#: decoded likelihoods. Enough cells that the number of clusters chosen does not depend on
#: which were drawn.
CELLS_PER_COMPONENT = 1000


@dataclass(frozen=True)
class ClusterSelection:
    """The merges of a GMVAE's components into clusters, and the number of clusters chosen.

    Parameters
    ----------
    merges
        One row per merge, in order: ``n_clusters`` (the number of groups after it), the two
        groups merged (``left``, ``right``, numbered as in a scipy linkage: components
        ``0..K-1``, then each merge's new group ``K, K+1, ...``), their ``separability``,
        and the cells of the new group (``size``, among the evaluated cells).
    threshold
        Separability below which two groups were merged into one cluster. For a cut into a
        given number of clusters, the separability of the first merge not made (made
        non-decreasing over the merges); where separabilities tie, that may equal the last
        merge made, and no threshold gives exactly that cut.
    n_clusters
        The number of clusters chosen.
    component_clusters
        The cluster (``0..n_clusters-1``) of each component.
    """

    merges: pd.DataFrame
    threshold: float
    n_clusters: int
    component_clusters: np.ndarray

    def cut(
        self, *, n_clusters: int | None = None, threshold: float | None = None
    ) -> "ClusterSelection":
        """The same merges cut elsewhere: into ``n_clusters`` clusters, or where every pair
        of groups is at least ``threshold`` separable (give exactly one).

        Parameters
        ----------
        n_clusters
            Number of clusters, from 1 to the number of components.
        threshold
            Separability two groups need to remain two clusters, in (0, 1].

        Returns
        -------
        A :class:`ClusterSelection` with the same ``merges``.
        """
        n_components = len(self.component_clusters)
        if (n_clusters is None) == (threshold is None):
            given = "neither" if n_clusters is None else "both"
            raise ValueError(f"Give one of n_clusters and a separability threshold, not {given}.")
        if threshold is not None:
            if not is_real(threshold) or not 0 < threshold <= 1:
                raise ValueError(
                    f"The separability threshold must be a number in (0, 1], got {threshold!r}."
                )
            return _cut(self.merges, n_components, threshold)
        if whole_number(n_clusters, 1) is None or n_clusters > n_components:
            raise ValueError(
                f"n_clusters must be an integer from 1 to the {n_components} components, "
                f"got {n_clusters!r}."
            )
        # The threshold that stops the merging with n_clusters groups left: the separability
        # of the first merge not made (made non-decreasing, as the merges are undone in order).
        separabilities = np.maximum.accumulate(self.merges["separability"].to_numpy())
        n_merges = n_components - int(n_clusters)
        threshold = separabilities[n_merges] if n_merges < len(separabilities) else 1.0
        return _cut(self.merges, n_components, float(threshold), n_merges)

    def linkage(self, *, clusters_only: bool = False) -> np.ndarray:
        """The merges as a scipy linkage matrix, in their order (height: the separability of
        each merge, made non-decreasing); with ``clusters_only``, the tree over the chosen
        clusters."""
        merges = self.merges
        distances = np.maximum.accumulate(merges["separability"].to_numpy())
        rows = np.column_stack([merges["left"], merges["right"], distances]).astype(float)
        rows = _with_leaf_counts(rows, len(self.component_clusters))
        if not clusters_only:
            return rows
        return _tree_over_clusters(rows, self.component_clusters, self.n_clusters)

    def dendrogram(
        self, key: str, categories: list[str], cluster_means: np.ndarray, use_rep: str
    ) -> dict:
        """The hierarchy of the clusters ``categories`` (names of clusters present in
        ``obs[key]``) in the form :func:`scanpy.pl.dendrogram` reads from
        ``adata.uns[f"dendrogram_{key}"]``; its correlation matrix (drawn by
        :func:`scanpy.pl.correlation_matrix`) correlates ``cluster_means``, the clusters'
        mean vectors of ``obsm[use_rep]`` (one row per category), as
        :func:`scanpy.tl.dendrogram` would."""
        present = [int(category) for category in categories]
        if len(present) < 2:
            tree = np.zeros((0, 4))
        else:
            # Cophenetic distances of the clusters present, re-linked: the same tree, pruned.
            distances = cophenet(self.linkage(clusters_only=True))
            full = _square(distances, self.n_clusters)[np.ix_(present, present)]
            tree = linkage(full[np.triu_indices(len(present), 1)], method="single")
        info = (
            dendrogram(tree, labels=categories, no_plot=True)
            if len(present) > 1
            else {
                "ivl": categories,
                "leaves": list(range(len(categories))),
                "icoord": [],
                "dcoord": [],
                "color_list": [],
                "leaves_color_list": [],
            }
        )
        n = len(cluster_means)
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = (  # undefined over a 1-D latent space
                np.atleast_2d(np.corrcoef(cluster_means))
                if cluster_means.shape[1] > 1
                else np.full((n, n), np.nan)
            )
        return {
            "linkage": tree,
            "groupby": [key],
            "use_rep": use_rep,
            "cor_method": "pearson",
            "linkage_method": "greedy merge of the least separable pair",
            "categories_ordered": info["ivl"],
            "categories_idx_ordered": info["leaves"],
            "dendrogram_info": info,
            "correlation_matrix": correlation,
        }


def cells_to_evaluate(
    components: np.ndarray, n_components: int, cells_per_component: int, seed: int
) -> np.ndarray:
    """Positions of the cells whose likelihoods the merging reads: every cell of a component
    of up to ``cells_per_component`` cells, else that many drawn at random with ``seed``.

    Parameters
    ----------
    components
        The component of each cell.
    n_components
        Number of components.
    cells_per_component
        Cells evaluated per component at most.
    seed
        Seed of the draws.
    """
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            rng.permutation(np.flatnonzero(components == k))[:cells_per_component]
            for k in range(n_components)
        ]
    )


def select_clusters(
    log_likelihoods: np.ndarray,
    components: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    threshold: float = SEPARABILITY_THRESHOLD,
) -> ClusterSelection:
    """Merge components into clusters by the separability of their cells (module docstring).

    Parameters
    ----------
    log_likelihoods
        :math:`\\log p(x_i \\mid z = \\mu_j)`, cells x K (see
        :meth:`~scvae.module.GMVAEModule.component_log_likelihoods`).
    components
        The component (argmax q(y|x)) of each of those cells.
    weights
        Each component's weight within a group (its number of cells in the data).
    means
        The components' means in the latent space (K x latent): a component without cells
        is merged first, into the component whose mean is nearest.
    threshold
        Separability two groups need to remain two clusters.

    Returns
    -------
    The merges down to one group and the clusters at ``threshold``.
    """
    n_components = log_likelihoods.shape[1]
    weights = np.asarray(weights, dtype=float)
    with np.errstate(divide="ignore"):  # a component without cells has no weight in a group
        log_weights = np.log(weights) if weights.any() else np.zeros_like(weights)
    groups = {j: [j] for j in range(n_components)}  # group id -> components
    members = {j: components == j for j in range(n_components)}  # group id -> its cells
    scores = {j: log_likelihoods[:, j] for j in range(n_components)}  # log p(x | group)
    rows = []
    next_id = n_components
    occupied = [j for j in range(n_components) if members[j].any()] or [0]
    for j in range(n_components):  # nothing to tell apart: joins the nearest component
        if j in occupied:
            continue
        nearest = occupied[int(((means[occupied] - means[j]) ** 2).sum(1).argmin())]
        group = next(g for g, comps in groups.items() if nearest in comps)
        groups[next_id] = groups.pop(group) + groups.pop(j)
        members[next_id] = members.pop(group) | members.pop(j)
        scores[next_id] = scores.pop(group)  # the empty component adds no cells
        del scores[j]
        rows.append((len(groups), min(group, j), max(group, j), 0.0, int(members[next_id].sum())))
        next_id += 1
    separability = {}
    while len(groups) > 1:
        alive = sorted(groups)
        for a_index, a in enumerate(alive):
            for b in alive[a_index + 1 :]:
                if (a, b) not in separability:
                    separability[a, b] = _separability(scores, members, a, b)
        (a, b), value = min(
            ((pair, separability[pair]) for pair in separability), key=lambda p: p[1]
        )
        merged = groups.pop(a) + groups.pop(b)
        groups[next_id] = merged
        members[next_id] = members.pop(a) | members.pop(b)
        scores[next_id] = logsumexp(
            log_likelihoods[:, merged] + log_weights[merged] - logsumexp(log_weights[merged]),
            axis=1,
        )
        separability = {pair: v for pair, v in separability.items() if not {a, b} & set(pair)}
        rows.append((len(groups), a, b, value, int(members[next_id].sum())))
        next_id += 1
    merges = pd.DataFrame(rows, columns=["n_clusters", "left", "right", "separability", "size"])
    return _cut(merges, n_components, threshold)


def _separability(scores: dict, members: dict, a: int, b: int) -> float:
    """The smaller share of the cells of ``a`` and of ``b`` that prefer their own group (1 if
    one of them has no evaluated cell, which happens only when no component has any).

    Each share is Laplace's estimate from its n cells, (preferring + 1) / (n + 2): a group
    of a few cells that all prefer it is not yet evidence of a cluster (three of three give
    0.8), while a hundred of a hundred give 0.99.
    """
    shares = [
        (float(np.sum(scores[own][members[own]] > scores[other][members[own]])) + 1.0)
        / (float(members[own].sum()) + 2.0)
        for own, other in ((a, b), (b, a))
        if members[own].any()
    ]
    return min(shares) if len(shares) == 2 else 1.0


def _cut(
    merges: pd.DataFrame, n_components: int, threshold: float, n_merges: int | None = None
) -> ClusterSelection:
    """Undo the merges from the first one at or above ``threshold`` on (or keep the first
    ``n_merges``); the groups left are the clusters (numbered by their smallest component)."""
    if n_merges is None:
        kept = merges["separability"].to_numpy() < threshold
        n_merges = int(np.argmin(kept)) if not kept.all() else len(kept)
    parent = np.arange(n_components + len(merges))
    for step in range(n_merges):
        row = merges.iloc[step]
        parent[int(row.left)] = parent[int(row.right)] = n_components + step

    def root(node: int) -> int:
        while parent[node] != node:
            node = parent[node]
        return node

    roots = np.array([root(j) for j in range(n_components)])
    _, clusters = np.unique(roots, return_inverse=True)
    order = {c: i for i, c in enumerate(dict.fromkeys(clusters))}  # by first component
    clusters = np.array([order[c] for c in clusters])
    return ClusterSelection(merges, threshold, int(clusters.max() + 1), clusters)


def _tree_over_clusters(rows: np.ndarray, clusters: np.ndarray, n_clusters: int) -> np.ndarray:
    """The linkage rows that join whole clusters, renumbered over the clusters."""
    n_components = len(clusters)
    node_cluster = {j: int(clusters[j]) for j in range(n_components)}
    node_id = {}  # linkage node -> node in the cluster tree
    tree, next_id = [], n_clusters
    for step, (left, right, distance, _) in enumerate(rows):
        left, right = int(left), int(right)
        new = n_components + step
        cl, cr = node_cluster.get(left), node_cluster.get(right)
        if cl is not None and cl == cr:  # inside one cluster
            node_cluster[new] = cl
            continue
        ids = [node_id.get(n, node_cluster.get(n)) for n in (left, right)]
        tree.append([*ids, distance])
        node_id[new] = next_id
        next_id += 1
    return _with_leaf_counts(np.array(tree, dtype=float).reshape(-1, 3), n_clusters)


def _with_leaf_counts(rows: np.ndarray, n_leaves: int) -> np.ndarray:
    """Linkage rows ``(left, right, distance)`` with scipy's fourth column, the leaves below."""
    counts = [1.0] * n_leaves
    for left, right, _ in rows:
        counts.append(counts[int(left)] + counts[int(right)])
    return np.column_stack([rows, counts[n_leaves:]]) if len(rows) else np.zeros((0, 4))


def _square(condensed: np.ndarray, n: int) -> np.ndarray:
    square = np.zeros((n, n))
    square[np.triu_indices(n, 1)] = condensed
    return square + square.T


def nearly_empty_size(n_cells: int, n_clusters: int) -> int:
    """Cells a cluster must hold to count as in use: 1% of an even share, at least 3."""
    return max(3, math.ceil(0.01 * n_cells / n_clusters))


def cluster_use(sizes: np.ndarray) -> tuple[int, str | None]:
    """The number of clusters in use (see :func:`nearly_empty_size`) and, when some are
    not, a warning that says how many and what to try."""
    n_clusters = len(sizes)
    minimum = nearly_empty_size(int(sizes.sum()), n_clusters)
    n_used = int((sizes >= minimum).sum())
    if n_used == n_clusters:
        return n_used, None
    return n_used, (
        f"{n_clusters - n_used} of the {n_clusters} GMVAE clusters "
        f"{'holds' if n_clusters - n_used == 1 else 'hold'} fewer than {minimum} cells, so "
        f"{n_used} {'is' if n_used == 1 else 'are'} in use: the data may hold fewer than "
        f"{n_clusters} clusters, "
        "or components emptied while training. Try fewer clusters (a smaller n_clusters, "
        "n_clusters='auto', or model.select_clusters), or check the fit in "
        "pl.training_curves(model). "
        "Every cluster's number of cells is in model.cluster_sizes_."
    )
