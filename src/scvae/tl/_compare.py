"""Compare likelihoods and model types on one held-out split."""

from collections.abc import Sequence
from typing import Any

import pandas as pd
from anndata import AnnData

from scvae.data import check_obs_key

from ._workflow import (
    clustering_scores,
    evaluate_model,
    fit_model,
    heldout_split,
    unregistered_copy,
)


def compare_models(
    adata: AnnData,
    likelihoods: Sequence[str] = ("poisson", "nb", "zinb"),
    n_clusters: Sequence[int | None] = (None, 5),
    labels_key: str | None = None,
    max_epochs: int = 100,
    heldout_fraction: float = 0.1,
    seed: int = 0,
    n_mc_samples: int = 100,
    layer: str | None = None,
    batch_key: str | None = None,
    train_kwargs: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> pd.DataFrame:
    """Train every likelihood x model combination on one split and score it on held-out cells.

    One random split (``heldout_fraction`` of the cells held out, seed ``seed``) is shared by
    all models, which train on the remaining cells only and all start from seed ``seed``. Each
    model is scored on the held-out cells by its per-cell ELBO and its importance-weighted
    log-likelihood (both in nats, higher is better). ``adata`` is not modified: models work
    on copies.

    Parameters
    ----------
    adata
        AnnData with raw counts.
    likelihoods
        Count likelihoods to compare (see :class:`~scvae.VAE`).
    n_clusters
        Model types: ``None`` for a :class:`~scvae.VAE`, an integer K for a
        :class:`~scvae.GMVAE` with K components.
    labels_key
        ``adata.obs`` column of known labels: adds the ``ari`` and ``nmi`` of each GMVAE's
        clusters against them, over all cells (labels are never used in training); ``NaN`` for
        VAEs.
    max_epochs
        Training epochs of every model.
    heldout_fraction
        Fraction of cells held out for scoring.
    seed
        Seed of the split and of every model's training.
    n_mc_samples
        Importance samples per held-out cell for the log-likelihood.
    layer, batch_key
        Where the raw counts are and the batch column, as for :func:`scvae.setup_anndata`.
    train_kwargs
        More options of ``model.train`` (default: no progress bar).
    **model_kwargs
        Options of every model's constructor (``n_latent``, ``n_hidden``, ...).

    Returns
    -------
    One row per model with columns ``model`` ("VAE"/"GMVAE"), ``likelihood``, ``n_clusters``
    (nullable integer), ``heldout_elbo``, ``heldout_log_likelihood`` and, with
    ``labels_key``, ``ari`` and ``nmi``.

    Examples
    --------
    >>> df = scvae.tl.compare_models(adata, labels_key="cell_type", max_epochs=50)
    >>> scvae.pl.model_comparison(df, metric="heldout_log_likelihood")
    """
    check_obs_key(adata, labels_key, "labels_key")
    train_idx, heldout_idx = heldout_split(adata.n_obs, heldout_fraction, seed)
    heldout = unregistered_copy(adata, heldout_idx)
    train_kwargs = {"enable_progress_bar": False, **(train_kwargs or {}), "max_epochs": max_epochs}
    everyone = unregistered_copy(adata) if labels_key is not None else None
    rows = []
    for k in n_clusters:
        for likelihood in likelihoods:
            model = fit_model(
                unregistered_copy(adata, train_idx),
                n_clusters=k,
                layer=layer,
                batch_key=batch_key,
                seed=seed,
                train_kwargs=train_kwargs,
                likelihood=likelihood,
                **model_kwargs,
            )
            metrics = evaluate_model(model, heldout, n_mc_samples=n_mc_samples)
            row = {
                "model": metrics["model"],
                "likelihood": likelihood,
                "n_clusters": k,
                "heldout_elbo": metrics["elbo"],
                "heldout_log_likelihood": metrics["log_likelihood"],
            }
            if labels_key is not None:
                row["ari"] = row["nmi"] = float("nan")
                if k is not None:
                    row.update(clustering_scores(adata.obs[labels_key], model.predict(everyone)))
            rows.append(row)
    table = pd.DataFrame(rows)
    table["n_clusters"] = table["n_clusters"].astype("Int64")
    return table
