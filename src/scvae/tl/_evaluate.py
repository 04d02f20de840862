"""Scoring a fitted model: held-out likelihoods and clusters against labels."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from anndata import AnnData
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from scvae._arguments import whole_number
from scvae._random import seeded
from scvae.data import check_obs_complete, check_obs_key
from scvae.model import GMVAE, ScvaeModel


def check_n_mc_samples(n_mc_samples: int) -> int:
    """``n_mc_samples`` of :func:`evaluate_model` as an ``int``, or a ``ValueError``."""
    checked = whole_number(n_mc_samples, 1)
    if checked is None:
        raise ValueError(f"n_mc_samples must be a positive integer, got {n_mc_samples!r}.")
    return checked


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
