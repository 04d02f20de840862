"""The demo: a GMVAE on the bundled Paul et al. (2015) data, with its figures and scores."""

import json
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import scanpy as sc
from anndata import AnnData

from scvae import datasets, pl
from scvae._files import write_whole
from scvae._result_keys import CLUSTER_KEY, LATENT_KEY
from scvae.data import strip_registration
from scvae.model import (
    check_cells_fill_clusters,
    check_max_epochs,
    check_n_clusters,
    training_cells,
)

from ._evaluate import clustering_scores, evaluate_model
from ._fit import fit_model, heldout_split, unregistered_copy
from ._genes import check_n_genes, select_variable_genes

#: Number of GMVAE components of the demo: the 19 clusters published by Paul et al.
DEMO_N_CLUSTERS = 19
#: Genes the demo keeps: the most variable ones (of 3451), as in scanpy's paul15 tutorial.
DEMO_N_GENES = 1000
#: Importance samples per held-out cell for the demo's log-likelihood.
DEMO_N_MC_SAMPLES = 20
#: Fraction of the cells that the demo holds out to score the model.
DEMO_HELDOUT_FRACTION = 0.1


def run_demo(
    output_dir: str | Path = "scvae_demo",
    *,
    n_clusters: int | str = DEMO_N_CLUSTERS,
    max_epochs: int | None = None,
    n_genes: int = DEMO_N_GENES,
    seed: int = 0,
    enable_progress_bar: bool = True,
) -> dict[str, Any]:
    """Cluster the bundled Paul et al. (2015) myeloid progenitors with a GMVAE.

    Keeps the ``n_genes`` most variable genes (:func:`select_variable_genes`; the model sees
    their raw counts) and drops the cells left without any count in them (the model cannot
    fit an empty cell; ``n_cells_dropped`` in the metrics says how many), trains a GMVAE with
    a negative binomial likelihood on 90% of the cells and scores it on the other 10%
    (held-out ELBO and log-likelihood), then annotates every cell kept and compares its
    clusters with the published ones (ARI, NMI). Writes into ``output_dir``:
    ``paul15_scvae.h5ad`` (the cells kept, annotated, with a UMAP of the latent space),
    ``umap.png`` (by GMVAE cluster and by published label), ``training_curves.png`` and
    ``metrics.json``. The options are checked before ``output_dir`` is created.

    Parameters
    ----------
    output_dir
        Directory for the files (created; files in it are replaced).
    n_clusters
        GMVAE components, or ``"auto"`` to let the GMVAE choose its number of clusters; by
        default the 19 published clusters, so that the scores compare clusterings of the
        same resolution.
    max_epochs
        Training epochs at most; by default the GMVAE's, which stops once the clusters and
        the ELBO have settled (a minute or two on a laptop CPU).
    n_genes
        Most variable genes kept; 0 keeps all (negative numbers are refused).
    seed
        Seed of the split, the training and the UMAP.
    enable_progress_bar
        Show the training progress bar.

    Returns
    -------
    The metrics written to ``metrics.json``; ``n_clusters`` is the number of clusters of the
    model (for ``"auto"``, the number it chose).

    Raises
    ------
    ValueError
        ``n_clusters``, ``max_epochs`` or ``n_genes`` out of range (before anything is
        written).
    """
    start = time.perf_counter()
    _check_demo_options(n_clusters, max_epochs, n_genes)
    adata, n_dropped = _cells_with_counts(select_variable_genes(datasets.paul15(), n_genes))
    train_idx, heldout_idx = heldout_split(adata.n_obs, DEMO_HELDOUT_FRACTION, seed)
    if n_clusters != "auto":
        # The GMVAE trains on scvi-tools' share of the cells it is given.
        check_cells_fill_clusters(
            n_clusters, training_cells(len(train_idx), None), "training cells"
        )
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    model = fit_model(
        unregistered_copy(adata, train_idx),
        n_clusters=n_clusters,
        seed=seed,
        train_kwargs={"max_epochs": max_epochs, "enable_progress_bar": enable_progress_bar},
        likelihood="nb",
    )
    training_seconds = time.perf_counter() - start
    heldout = evaluate_model(
        model, unregistered_copy(adata, heldout_idx), n_mc_samples=DEMO_N_MC_SAMPLES, seed=seed
    )
    model.annotate(adata)
    metrics = _demo_metrics(model, adata, heldout, n_dropped, len(train_idx))
    metrics["training_seconds"] = round(training_seconds, 1)
    _write_demo_figures(model, adata, output, seed=seed, chosen=n_clusters == "auto")
    adata = strip_registration(adata)
    write_whole(
        output / "paul15_scvae.h5ad", lambda path: adata.write_h5ad(path, compression="gzip")
    )
    metrics["wall_seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(metrics, indent=2) + "\n"
    write_whole(output / "metrics.json", lambda path: path.write_text(text))
    return metrics


def _demo_metrics(
    model, adata: AnnData, heldout: dict[str, Any], n_dropped: int, n_train: int
) -> dict[str, Any]:
    """The demo's scores: the model's size and fit, its held-out ELBO and log-likelihood,
    and its clusters against the published ones (``adata`` annotated by ``model``)."""
    return {
        "model": heldout["model"],
        "likelihood": "nb",
        "n_clusters": model.n_clusters,
        "epochs": len(model.history["elbo_train"]),
        "n_cells": int(adata.n_obs),
        "n_cells_dropped": n_dropped,
        "n_genes": int(adata.n_vars),
        "n_train": n_train,
        "n_heldout": heldout["n_cells"],
        "heldout_elbo": heldout["elbo"],
        "heldout_log_likelihood": heldout["log_likelihood"],
        # Clusters holding at least 1% of an even share of the training cells (and 3 cells).
        "n_clusters_used": model.n_clusters_used_,
        **clustering_scores(adata.obs["label"], adata.obs[CLUSTER_KEY]),
    }


def _write_demo_figures(model, adata: AnnData, output: Path, *, seed: int, chosen: bool) -> None:
    """Write ``umap.png`` (a UMAP of the latent space, added to ``adata``, by GMVAE cluster
    and by published label) and ``training_curves.png`` into ``output``, each whole or not
    at all: a demo stopped while it writes leaves no partial file."""
    sc.pp.neighbors(adata, use_rep=LATENT_KEY, random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    figure, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    titles = (
        f"GMVAE clusters (K={model.n_clusters}{', chosen' if chosen else ''})",
        "published clusters (Paul et al. 2015)",
    )
    for ax, key, title in zip(axes, (CLUSTER_KEY, "label"), titles, strict=True):
        sc.pl.umap(adata, color=key, ax=ax, show=False, title=title, legend_fontsize=7)
    write_whole(
        output / "umap.png", lambda path: figure.savefig(path, dpi=150, bbox_inches="tight")
    )
    plt.close(figure)
    curves = pl.training_curves(model)[0].get_figure()
    write_whole(
        output / "training_curves.png",
        lambda path: curves.savefig(path, dpi=150, bbox_inches="tight"),
    )
    plt.close(curves)


def _check_demo_options(n_clusters: int | str, max_epochs: int | None, n_genes: int) -> None:
    """Refuse options the demo cannot run with, before it writes anything."""
    check_n_clusters(n_clusters)
    check_max_epochs(max_epochs)
    check_n_genes(n_genes)


def _cells_with_counts(adata: AnnData) -> tuple[AnnData, int]:
    """``adata`` without the cells that have no count in its genes, and how many were
    dropped (keeping only the most variable genes can leave a cell empty)."""
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    kept = totals > 0
    if kept.all():
        return adata, 0
    return adata[kept].copy(), int((~kept).sum())
