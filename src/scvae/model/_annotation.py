"""A GMVAE's clusters written into an AnnData as scanpy reads them."""

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib import rcParams
from matplotlib.colors import to_hex, to_rgba

from ._cluster_selection import ClusterSelection


def write_clusters(
    adata: AnnData,
    keys: dict[str, str],
    latent: np.ndarray,
    probabilities: np.ndarray,
    hierarchy: ClusterSelection | None,
) -> None:
    """Write every cell's latent mean, cluster probabilities (cells x clusters), cluster
    (categorical, unused clusters dropped) and confidence under ``keys``
    (:func:`scvae._result_keys.result_keys`), the clusters' colours and, given their
    ``hierarchy``, their dendrogram for scanpy.

    The colours are scanpy's default palette for all the model's clusters, so that a
    cluster has one colour in every AnnData the model annotates, whichever clusters it holds.
    """
    n_clusters, cluster_key = probabilities.shape[1], keys["cluster"]
    names = [str(k) for k in range(n_clusters)]
    clusters = pd.Categorical(
        np.asarray(names)[probabilities.argmax(1)], categories=names
    ).remove_unused_categories()
    present = [int(name) for name in clusters.categories]
    palette = cluster_palette(n_clusters)
    dendrogram = None
    if hierarchy is not None:  # computed before anything is written
        codes = clusters.codes
        means = np.array([latent[codes == code].mean(0) for code in range(len(present))])
        dendrogram = hierarchy.dendrogram(
            cluster_key, list(clusters.categories), means, keys["latent"]
        )
    adata.obsm[keys["latent"]] = latent
    adata.obsm[keys["probabilities"]] = probabilities
    adata.obs[cluster_key] = clusters
    adata.obs[keys["confidence"]] = probabilities.max(1)
    adata.uns[f"{cluster_key}_colors"] = [palette[k] for k in present]
    if dendrogram is None:  # no hierarchy of these clusters: an earlier model's would be theirs
        adata.uns.pop(f"dendrogram_{cluster_key}", None)
    else:
        adata.uns[f"dendrogram_{cluster_key}"] = dendrogram


def cluster_palette(n_clusters: int) -> list[str]:
    """The colours scanpy gives ``n_clusters`` categories by default, as hex strings:
    matplotlib's colour cycle where it has enough (which a style may give as RGB tuples),
    else scanpy's palettes of 20, 28 or 102 (grey beyond)."""
    from scanpy.plotting import palettes  # here: importing scanpy takes seconds

    cycle = rcParams["axes.prop_cycle"].by_key()["color"]
    for palette in (cycle, palettes.default_20, palettes.default_28, palettes.default_102):
        if n_clusters <= len(palette):
            return [_hex(colour) for colour in palette[:n_clusters]]
    return [_hex("grey")] * n_clusters


def _hex(colour) -> str:
    """``colour`` as scanpy writes colours: ``#rrggbb``, with the alpha only when not 1."""
    return to_hex(colour, keep_alpha=to_rgba(colour)[3] < 1)
