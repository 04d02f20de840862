"""Shared steps of the scvae workflows: clean copies, splits, model building, evaluation."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scanpy as sc
import scvi
from anndata import AnnData
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from scvae._arguments import whole_number
from scvae._random import seeded
from scvae.data import check_obs_complete, check_obs_key, strip_registration
from scvae.model import GMVAE, VAE, ScvaeModel, read_saved_model, setup_anndata
from scvae.train import quiet_training


def unregistered_copy(adata: AnnData, indices: Sequence[int] | np.ndarray | None = None) -> AnnData:
    """Copy of ``adata`` (or of its cells ``indices``) with no scvi-tools registration.

    Parameters
    ----------
    adata
        AnnData to copy; it is not modified.
    indices
        Cells to keep; all by default.
    """
    copy = adata.copy() if indices is None else adata[np.asarray(indices)].copy()
    return strip_registration(copy)


def check_n_genes(n_genes: int) -> int:
    """``n_genes`` of :func:`select_variable_genes` as an ``int``, or a ``ValueError``."""
    checked = whole_number(n_genes, 0)
    if checked is None:
        raise ValueError(f"n_genes must be 0 (all genes) or a positive integer, got {n_genes!r}.")
    return checked


def check_n_mc_samples(n_mc_samples: int) -> int:
    """``n_mc_samples`` of :func:`evaluate_model` as an ``int``, or a ``ValueError``."""
    checked = whole_number(n_mc_samples, 1)
    if checked is None:
        raise ValueError(f"n_mc_samples must be a positive integer, got {n_mc_samples!r}.")
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


def heldout_split(n_obs: int, heldout_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random split of ``n_obs`` cells into training and held-out indices (both sorted).

    Parameters
    ----------
    n_obs
        Number of cells.
    heldout_fraction
        Fraction of cells held out, in (0, 1); at least one cell is held out and one kept.
    seed
        Seed of the permutation.
    """
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}.")
    n_heldout = min(max(1, round(heldout_fraction * n_obs)), n_obs - 1)
    order = np.random.default_rng(seed).permutation(n_obs)
    return np.sort(order[n_heldout:]), np.sort(order[:n_heldout])


def build_model(adata: AnnData, n_clusters: int | None = None, **model_kwargs: Any) -> ScvaeModel:
    """A :class:`~scvae.VAE` (``n_clusters=None``) or a :class:`~scvae.GMVAE` with K clusters.

    Parameters
    ----------
    adata
        AnnData registered with :func:`scvae.setup_anndata`.
    n_clusters
        ``None`` for a VAE, else the number of GMVAE components.
    **model_kwargs
        Passed to the model's constructor (``likelihood``, ``n_latent``, ...).
    """
    if n_clusters is None:
        return VAE(adata, **model_kwargs)
    return GMVAE(adata, n_clusters=n_clusters, **model_kwargs)


def load_model(
    model_dir: str | Path, adata: AnnData | None = None, *, prefix: str | None = None
) -> ScvaeModel:
    """Load a saved :class:`~scvae.VAE` or :class:`~scvae.GMVAE`, whichever it is.

    The class is read from the registry that scvi-tools saves with the model.

    Parameters
    ----------
    model_dir
        Directory written by ``model.save``.
    adata
        AnnData with the model's genes, registered by transfer from the saved setup; by
        default the AnnData saved with the model (``model.save(..., save_anndata=True)``).
        A model saved without it, as ``scvae train --save-model`` saves, needs ``adata``.
    prefix
        File name prefix given to ``model.save(..., prefix=...)``.

    Returns
    -------
    The loaded model.

    Raises
    ------
    FileNotFoundError
        ``model_dir`` is not a directory.
    ValueError
        No readable model with this ``prefix`` in ``model_dir``, a model of another class, or
        no ``adata`` for a model saved without its AnnData.
    """
    if not Path(model_dir).is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model directory")
    name = read_saved_model(model_dir, prefix)["attr_dict"]["registry_"]["model_name"]
    classes = {cls.__name__: cls for cls in (VAE, GMVAE)}
    if name not in classes:
        raise ValueError(f"{model_dir} holds a {name} model, not one of {sorted(classes)}")
    return classes[name].load(str(model_dir), adata=adata, prefix=prefix)


def saved_genes(model_dir: str | Path, *, prefix: str | None = None) -> pd.Index:
    """The genes of a saved model, in its order: select them from an AnnData with more genes,
    or another order, before loading the model onto it.

    Parameters
    ----------
    model_dir
        Directory written by ``model.save``.
    prefix
        File name prefix given to ``model.save(..., prefix=...)``.

    Returns
    -------
    The model's ``var_names``.

    Examples
    --------
    >>> query = query[:, scvae.tl.saved_genes("my_model")].copy()  # doctest: +SKIP
    >>> model = scvae.tl.load_model("my_model", query)  # doctest: +SKIP
    """
    if not Path(model_dir).is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model directory")
    return pd.Index(np.asarray(read_saved_model(model_dir, prefix)["var_names"]))


def fit_model(
    adata: AnnData,
    *,
    n_clusters: int | None = None,
    layer: str | None = None,
    batch_key: str | None = None,
    allow_non_integer: bool = False,
    seed: int = 0,
    train_kwargs: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> ScvaeModel:
    """Register ``adata``, build a VAE or GMVAE on it and train it with seed ``seed``.

    Parameters
    ----------
    adata
        AnnData with raw counts; it is registered (and annotated by training) in place.
    n_clusters
        ``None`` for a VAE, else the number of GMVAE components.
    layer, batch_key, allow_non_integer
        Passed to :func:`scvae.setup_anndata`.
    seed
        Seed of scvi-tools (``scvi.settings.seed``: Python, NumPy and PyTorch).
    train_kwargs
        Passed to the model's ``train`` (``max_epochs``, ``enable_progress_bar``, ...).
    **model_kwargs
        Passed to the model's constructor.
    """
    setup_anndata(adata, layer=layer, batch_key=batch_key, allow_non_integer=allow_non_integer)
    with quiet_training():  # Lightning announces the seed otherwise
        scvi.settings.seed = seed
    model = build_model(adata, n_clusters, **model_kwargs)
    model.train(**(train_kwargs or {}))
    return model


def check_labels(adata: AnnData, key: str | None, name: str) -> None:
    """Refuse a labels column that ``adata.obs`` lacks, or that lacks labels (NaN).

    Scores against labels need one for every cell: a missing label would otherwise be scored
    as a class of its own (``"nan"``).

    Parameters
    ----------
    adata
        AnnData whose ``obs`` holds the labels.
    key
        The ``obs`` column; ``None`` checks nothing.
    name
        The argument's name in the messages (``"labels_key"``, ``"--labels-key"``).

    Raises
    ------
    KeyError
        ``key`` is not a column of ``adata.obs``.
    ValueError
        Some cells have no label.
    """
    check_obs_key(adata, key, name)
    check_obs_complete(
        adata,
        key,
        name,
        what="label",
        fix="Scores need a label for every cell: keep the labelled cells only "
        f"(adata[adata.obs[{key!r}].notna()]).",
    )


def clustering_scores(labels: Sequence[Any], clusters: Sequence[Any]) -> dict[str, float]:
    """Adjusted Rand index and normalised mutual information of a clustering vs labels.

    Parameters
    ----------
    labels
        Known label of each cell.
    clusters
        Cluster of each cell.

    Returns
    -------
    ``{"ari": ..., "nmi": ...}``.
    """
    labels, clusters = np.asarray(labels).astype(str), np.asarray(clusters).astype(str)
    return {
        "ari": float(adjusted_rand_score(labels, clusters)),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
    }


def evaluate_model(
    model: ScvaeModel,
    adata: AnnData | None = None,
    *,
    labels_key: str | None = None,
    n_mc_samples: int = 100,
    batch_size: int | None = None,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Per-cell ELBO, importance-weighted log-likelihood and, for a GMVAE, ARI/NMI vs labels.

    The ELBO and the log-likelihood are Monte Carlo estimates; with a ``seed`` they are the
    same on every call. The caller's random state (Python, NumPy, PyTorch) is left as it was.

    Parameters
    ----------
    model
        A trained :class:`~scvae.VAE` or :class:`~scvae.GMVAE`.
    adata
        Cells to evaluate, typically held out from training; defaults to the model's AnnData.
        A new AnnData is registered by transfer from the model's setup.
    labels_key
        ``adata.obs`` column of known labels: adds ``"ari"`` and ``"nmi"`` of the GMVAE's
        clusters (ignored for a VAE, which does not cluster). Every cell needs a label:
        a column with missing labels (NaN) is refused.
    n_mc_samples
        Importance samples per cell for the log-likelihood, at least 1.
    batch_size
        Cells per forward pass.
    seed
        Seed of the Monte Carlo samples, used inside this call only; ``None`` draws them from
        the current global random state (a different estimate on each call).

    Returns
    -------
    ``{"model", "n_cells", "elbo", "log_likelihood"[, "ari", "nmi"]}``; ``elbo`` and
    ``log_likelihood`` are means per cell (nats, higher is better).

    Raises
    ------
    KeyError
        ``labels_key`` is not a column of ``adata.obs``.
    ValueError
        Some cells have no label, or ``n_mc_samples`` is below 1.
    """
    adata = model.adata if adata is None else adata
    check_labels(adata, labels_key, "labels_key")
    n_mc_samples = check_n_mc_samples(n_mc_samples)
    with seeded(seed, model.device):
        metrics = _scores(model, adata, labels_key, n_mc_samples, batch_size)
    return metrics


def _scores(
    model: ScvaeModel,
    adata: AnnData,
    labels_key: str | None,
    n_mc_samples: int,
    batch_size: int | None,
) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "model": type(model).__name__,
        "n_cells": int(adata.n_obs),
        "elbo": float(model.get_elbo(adata, batch_size=batch_size)),
        "log_likelihood": float(
            model.get_marginal_ll(adata, n_mc_samples=n_mc_samples, batch_size=batch_size)
        ),
    }
    if labels_key is not None and isinstance(model, GMVAE):
        clusters = model.predict(adata, batch_size=batch_size)
        metrics.update(clustering_scores(adata.obs[labels_key], clusters))
    return metrics
