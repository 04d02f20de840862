"""Checks of a model's construction options, run before any module is built."""

import math
from collections.abc import Sequence

from anndata import AnnData

from scvae._arguments import check_flag, integer_at_least, is_real, whole_number
from scvae.data import InvalidCountsError, validate_counts
from scvae.distributions import LIKELIHOODS, get_likelihood
from scvae.module import DISPERSIONS, batch_norm_places, hidden_widths


def check_architecture(
    likelihood: str,
    dispersion: str,
    scale_by_library: bool,
    piecewise_cutoff: int | None,
    n_latent: int,
    n_hidden: int | Sequence[int],
    n_layers: int,
    dropout_rate: float,
    use_batch_norm: bool | str = "encoder",
    encode_batch: bool | None = False,
) -> list[int]:
    """Validate the architecture options of a model and return the hidden layer widths.

    Raises a :class:`ValueError` (:class:`TypeError` for a flag that is not ``True`` or
    ``False``) naming the bad option and the accepted values, before any module is built.
    """
    check_flag(scale_by_library, "scale_by_library")
    check_flag(encode_batch, "encode_batch")
    row = get_likelihood(likelihood)
    if dispersion not in DISPERSIONS:
        raise ValueError(f"dispersion={dispersion!r} is not one of {DISPERSIONS}.")
    if row.library_scaled and not scale_by_library:
        raise ValueError(
            f"likelihood={likelihood!r} scales rates by the library size by definition; "
            "use an unconstrained likelihood (e.g. likelihood='poisson') for free rates."
        )
    if piecewise_cutoff is not None:
        if not row.piecewise:
            wrappable = tuple(name for name, other in LIKELIHOODS.items() if other.piecewise)
            raise ValueError(
                f"The piecewise-categorical variant exists for {wrappable}, "
                f"not likelihood={likelihood!r}."
            )
        if not integer_at_least(piecewise_cutoff, 1):
            raise ValueError(
                f"piecewise_cutoff must be a positive integer, got {piecewise_cutoff}."
            )
    if not integer_at_least(n_latent, 1):
        raise ValueError(f"n_latent must be a positive integer, got {n_latent!r}.")
    if not is_real(dropout_rate) or not 0 <= dropout_rate < 1:
        raise ValueError(f"dropout_rate must be a number in [0, 1), got {dropout_rate!r}.")
    batch_norm_places(use_batch_norm)
    return hidden_widths(n_hidden, n_layers)


def check_mixture_options(
    inference: str,
    inferences: Sequence[str],
    prior: str,
    marginal_cluster_kl: bool,
    component_spread: float | None,
) -> None:
    """Refuse a GMVAE's mixture options that cannot be built: an ``inference`` not among
    ``inferences``, a ``prior`` other than ``"uniform"`` or ``"learned"``,
    ``marginal_cluster_kl`` without per-component inference, or a ``component_spread``
    that is not a finite number of at least 0."""
    if inference not in inferences:
        raise ValueError(f"inference={inference!r} is not one of {tuple(inferences)}.")
    if prior not in ("uniform", "learned"):
        raise ValueError(f"prior={prior!r} is not one of ('uniform', 'learned').")
    check_flag(marginal_cluster_kl, "marginal_cluster_kl")
    if marginal_cluster_kl and inference != "per_component":
        raise ValueError("marginal_cluster_kl=True is an option of inference='per_component'.")
    spread = component_spread
    if spread is not None and not (is_real(spread) and math.isfinite(spread) and spread >= 0):
        raise ValueError(
            "component_spread (the scale of the components' random initial means) must be a "
            f"finite number of at least 0, or None for the default; got {spread!r}."
        )


def check_n_clusters(n_clusters: int | str, max_clusters: int | None = None) -> None:
    """Raise ``ValueError`` unless ``n_clusters`` is ``"auto"`` or a positive integer, and
    ``max_clusters`` (when given) an integer of at least 2."""
    if n_clusters != "auto" and whole_number(n_clusters, 1) is None:
        raise ValueError(f"n_clusters must be a positive integer or 'auto', got {n_clusters!r}.")
    if max_clusters is not None and whole_number(max_clusters, 2) is None:
        raise ValueError(f"max_clusters must be an integer of at least 2, got {max_clusters}.")


def check_cells_fill_clusters(
    n_clusters: int, n_cells: int, cells: str = "cells of the AnnData"
) -> None:
    """Raise ``ValueError`` when a fit of ``n_clusters`` clusters gets only ``n_cells`` cells
    (named ``cells`` in the message; checked when training, not when a saved model is loaded
    onto a few query cells)."""
    if n_clusters > n_cells:
        raise ValueError(
            f"n_clusters={n_clusters} is more than the {n_cells} {cells}: every cluster needs "
            "cells. Ask for fewer clusters, or n_clusters='auto'."
        )


def check_piecewise_counts(adata: AnnData, layer: str | None, piecewise_cutoff: int | None) -> None:
    """Raise :class:`~scvae.data.InvalidCountsError` when a piecewise-categorical likelihood
    (``piecewise_cutoff`` given), which has one class per count, gets non-integer counts."""
    if piecewise_cutoff is None:
        return
    try:  # the counts were registered: the advice is about them, not the registration
        validate_counts(adata, layer=layer, query=True)
    except InvalidCountsError as error:
        raise InvalidCountsError(
            f"piecewise_cutoff={piecewise_cutoff} needs integer counts (one class per count): "
            f"{error} Or leave piecewise_cutoff out."
        ) from error
