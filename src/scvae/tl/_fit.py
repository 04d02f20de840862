"""Fitting a model on a clean copy of an AnnData, and held-out splits."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import scvi
from anndata import AnnData

from scvae._arguments import integer_at_least
from scvae.data import registering, strip_registration
from scvae.model import GMVAE, VAE, ScvaeModel, setup_anndata
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


def fit_model(
    adata: AnnData,
    *,
    n_clusters: int | None = None,
    layer: str | None = None,
    batch_key: str | None = None,
    allow_non_integer: bool = False,
    seed: int | None = 0,
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
        Seed of scvi-tools (``scvi.settings.seed``: Python, NumPy and PyTorch); ``None``
        leaves the random state as it is.
    train_kwargs
        Passed to the model's ``train`` (``max_epochs``, ``enable_progress_bar``, ...).
    **model_kwargs
        Passed to the model's constructor.
    """
    if seed is not None and not integer_at_least(seed, 0):
        raise ValueError(f"seed must be None or an integer of at least 0, got {seed!r}.")
    with registering(adata):  # a model option refused leaves the AnnData as it was
        setup_anndata(adata, layer=layer, batch_key=batch_key, allow_non_integer=allow_non_integer)
        with quiet_training():  # Lightning announces the seed otherwise
            scvi.settings.seed = None if seed is None else int(seed)
        model = build_model(adata, n_clusters, **model_kwargs)
    model.train(**(train_kwargs or {}))
    return model
