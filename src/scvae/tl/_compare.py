"""Compare likelihoods and model types on one held-out split."""

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from scvae._result_keys import DEFAULT_KEY
from scvae.data import check_obs_complete
from scvae.distributions import LIKELIHOODS
from scvae.model import (
    GMVAE,
    VAE,
    check_max_epochs,
    check_n_clusters,
    check_training_options,
    checked_schedule,
    setup_anndata,
)

from ._evaluate import check_labels, check_n_mc_samples, clustering_scores, evaluate_model
from ._fit import build_model, fit_model, heldout_split, unregistered_copy


def compare_models(
    adata: AnnData,
    *,
    likelihoods: Sequence[str] = ("poisson", "nb", "zinb"),
    n_clusters: Sequence[int | str | None] = (None, 5),
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

    Every argument is checked, and every model built (not trained), before the first model
    trains, so that an option one of the models refuses fails at once rather than after
    the others have trained.

    Parameters
    ----------
    adata
        AnnData with raw counts.
    likelihoods
        Count likelihoods to compare (see :class:`~scvae.VAE`); one name or several.
    n_clusters
        Model types, one or several: ``None`` for a :class:`~scvae.VAE`, an integer K for a
        :class:`~scvae.GMVAE` with K components, ``"auto"`` for a GMVAE that chooses its
        number of clusters.
    labels_key
        ``adata.obs`` column of known labels: adds the ``ari`` and ``nmi`` of each GMVAE's
        clusters against them, over all cells (labels are never used in training); ``NaN`` for
        VAEs. Every cell needs a label (a column with NaN is refused).
    max_epochs
        Training epochs of every model.
    heldout_fraction
        Fraction of cells held out for scoring.
    seed
        Seed of the split, of every model's training and of its held-out scores; as
        :func:`fit_model` does, it sets ``scvi.settings.seed``, which reseeds the session's
        random state and stays set afterwards.
    n_mc_samples
        Importance samples per held-out cell for the log-likelihood, at least 1.
    layer, batch_key
        Where the raw counts are and the batch column, as for :func:`scvae.setup_anndata`.
    train_kwargs
        More options of ``model.train`` (default: no progress bar); ``max_epochs`` is an
        argument of its own.
    **model_kwargs
        Options of every model's constructor (``n_latent``, ``n_hidden``, ...).

    Returns
    -------
    One row per model with columns ``model`` ("VAE"/"GMVAE"), ``likelihood``, ``n_clusters``
    (nullable integer: missing for a VAE, the number of clusters chosen for ``"auto"``),
    ``auto_clusters`` (whether the GMVAE chose that number), ``heldout_elbo``,
    ``heldout_log_likelihood`` and, with ``labels_key``, ``ari`` and ``nmi``.

    Raises
    ------
    KeyError
        ``labels_key`` or ``batch_key`` is not a column of ``adata.obs``.
    ValueError
        An unknown likelihood or model type, a GMVAE with more clusters than training cells,
        cells without labels, a batch with cells only in the held-out split, options a
        model refuses, or bad counts.
    TypeError
        Options (``model_kwargs``, ``train_kwargs``) that one of the model types lacks.

    Examples
    --------
    >>> df = scvae.tl.compare_models(adata, labels_key="cell_type", max_epochs=50)
    >>> scvae.pl.model_comparison(df, metric="heldout_log_likelihood")
    """
    check_labels(adata, labels_key, "labels_key")
    if "max_epochs" in (train_kwargs or {}):
        raise ValueError("Give max_epochs as an argument of compare_models, not in train_kwargs.")
    likelihoods, n_clusters = _as_list(likelihoods), _as_list(n_clusters)
    train_idx, heldout_idx = heldout_split(adata.n_obs, heldout_fraction, seed)
    train_kwargs = {"enable_progress_bar": False, **(train_kwargs or {}), "max_epochs": max_epochs}
    _check_options(likelihoods, n_clusters, n_mc_samples, train_kwargs)
    _check_batches(adata, batch_key, train_idx, heldout_idx)
    _build_every_model(
        unregistered_copy(adata, train_idx),
        likelihoods,
        n_clusters,
        layer,
        batch_key,
        model_kwargs,
        train_kwargs,
    )
    heldout = unregistered_copy(adata, heldout_idx)
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
            metrics = evaluate_model(model, heldout, n_mc_samples=n_mc_samples, seed=seed)
            row = {
                "model": metrics["model"],
                "likelihood": likelihood,
                "n_clusters": None if k is None else int(model.n_clusters if k == "auto" else k),
                "auto_clusters": k == "auto",
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


def _check_options(
    likelihoods: Sequence[str],
    n_clusters: Sequence[int | str | None],
    n_mc_samples: int,
    train_kwargs: dict[str, Any],
) -> None:
    """Refuse, before anything trains, the model types and options of a comparison that
    would fail one of its models."""
    if not likelihoods:
        raise ValueError(f"likelihoods must be a non-empty list of names, got {likelihoods!r}.")
    unknown = [name for name in likelihoods if name not in LIKELIHOODS]
    if unknown:
        raise ValueError(f"Unknown likelihoods {unknown}: choose from {sorted(LIKELIHOODS)}.")
    if not n_clusters:
        raise ValueError(
            f"n_clusters must be a non-empty list of None, 'auto' or integers, got {n_clusters!r}."
        )
    for k in n_clusters:
        if k is None:
            continue
        try:
            check_n_clusters(k)
        except ValueError:
            raise ValueError(
                f"n_clusters entries must be None (a VAE), a positive integer or 'auto' (a "
                f"GMVAE), got {k!r}."
            ) from None
    check_n_mc_samples(n_mc_samples)
    check_max_epochs(train_kwargs["max_epochs"])
    if None in n_clusters:
        vae_options = inspect.signature(VAE.train).parameters
        gmvae_only = [
            key
            for key in inspect.signature(GMVAE.train).parameters
            if key in train_kwargs and key not in vae_options
        ]
        if gmvae_only:
            raise TypeError(
                f"train_kwargs {gmvae_only} are options of GMVAE.train, and n_clusters has "
                "None, a VAE: compare the GMVAEs alone, or leave these options out."
            )


def _check_batches(
    adata: AnnData, batch_key: str | None, train_idx: np.ndarray, heldout_idx: np.ndarray
) -> None:
    """Refuse batches whose cells all fell into the held-out split: the models, trained on
    the other cells, could not score them."""
    if batch_key is None or batch_key not in adata.obs:
        return  # no batches, or setup_anndata names the missing column
    check_obs_complete(adata, batch_key, "batch_key")
    batches = np.asarray(adata.obs[batch_key])
    unseen = sorted(set(map(str, batches[heldout_idx])) - set(map(str, batches[train_idx])))
    if unseen:
        raise ValueError(
            f"Batches {unseen} of batch_key={batch_key!r} have all their cells in the held-out "
            "split, so no model would train on them: use another seed or heldout_fraction, "
            "or leave out those batches' cells."
        )


def _build_every_model(
    train: AnnData,
    likelihoods: Sequence[str],
    n_clusters: Sequence[int | str | None],
    layer: str | None,
    batch_key: str | None,
    model_kwargs: dict[str, Any],
    train_kwargs: dict[str, Any],
) -> None:
    """Register the training cells, build (without training) every model of the comparison
    and run the checks of its ``train(**train_kwargs)``, so that counts or options that one
    of them refuses fail before any fit."""
    setup_anndata(train, layer=layer, batch_key=batch_key)
    options = dict(train_kwargs)
    max_epochs, plan_kwargs = options.pop("max_epochs"), options.pop("plan_kwargs", None)
    key_added = options.pop("key_added", DEFAULT_KEY)
    schedule = [options.pop(key, None) for key in ("warmup_epochs", "component_init_epochs")]
    for k in n_clusters:
        for likelihood in likelihoods:
            model = build_model(train, k, likelihood=likelihood, **model_kwargs)
            if k is None:
                check_training_options(model, max_epochs, plan_kwargs, key_added, options)
            else:
                checked_schedule(model, max_epochs, *schedule, plan_kwargs, key_added, options)


def _as_list(values) -> list:
    """One option (a likelihood, a K, ``None``) or several, as a list."""
    if values is None or isinstance(values, str | int):
        return [values]
    return list(values)
