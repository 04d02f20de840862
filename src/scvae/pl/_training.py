"""Training curves of a trained model."""

from collections.abc import Sequence
from os import PathLike

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from scvae.model import ScvaeModel

from ._utils import finish

#: History terms plotted, in order, with their panel titles (present ones only).
TRAINING_TERMS: dict[str, str] = {
    "elbo": "ELBO",
    "reconstruction_loss": "reconstruction loss",
    "kl_local": "KL divergence (total)",
    "kl_z": "KL divergence of z",
    "kl_y": "KL divergence of y",
}


def training_curves(
    model: ScvaeModel,
    *,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | PathLike | None = None,
) -> list[Axes]:
    """Loss terms per epoch, training (solid) vs validation (dashed).

    One panel per term of ``model.history`` among the ELBO (higher is better, the sign of
    :meth:`~scvae.model.ScvaeModel.get_elbo`), the reconstruction loss and the KL divergences
    (for a GMVAE also those of z and y), all per cell. For a GMVAE, dotted vertical lines
    mark where its last fit placed its components (a model trained again continues its
    history): the jumps of the KL terms there are the placement, not an instability.

    Parameters
    ----------
    model
        A trained :class:`~scvae.VAE` or :class:`~scvae.GMVAE`.
    ax
        One axes per panel; by default a new figure with a row of panels.
    show
        ``True``: call :func:`matplotlib.pyplot.show` at the end; ``None`` (default) or
        ``False``: leave the figure open (a notebook shows it when the cell ends).
    save
        Path to save the figure to.

    Returns
    -------
    The axes of the panels.
    """
    history = model.history or {}  # None before training
    terms = [t for t in TRAINING_TERMS if f"{t}_train" in history]
    if not terms:
        raise ValueError("The model has no training history: train it first.")
    if ax is None:
        _, axes_array = plt.subplots(
            1, len(terms), figsize=(3.4 * len(terms), 3.0), squeeze=False, layout="constrained"
        )
        axes = list(axes_array.ravel())
    else:
        axes = [ax] if isinstance(ax, Axes) else list(np.ravel(ax))
        if len(axes) != len(terms):
            raise ValueError(f"Need {len(terms)} axes ({terms}), got {len(axes)}.")
    schedule = getattr(model, "schedule_", None)
    placements = (
        () if schedule is None else [schedule.first_epoch + p for p in schedule.placement_epochs]
    )
    for axis, term in zip(axes, terms, strict=True):
        for placement in placements:  # after epoch p (from 1): between indices p - 1 and p
            axis.axvline(placement - 0.5, color="grey", linestyle=":", linewidth=1)
        for split, style in (("train", "-"), ("validation", "--")):
            key = f"{term}_{split}"
            if key in history:
                values = history[key].astype(float)
                marker = "o" if len(values) == 1 else None  # one epoch: a point, not a line
                axis.plot(
                    values.index, np.asarray(values).ravel(), style, marker=marker, label=split
                )
        axis.set_title(TRAINING_TERMS[term])
        axis.set_xlabel("epoch")
        axis.set_ylabel("nats per cell")
        axis.legend(frameon=False)
    if placements:
        axes[0].plot([], [], ":", color="grey", label="components placed")
        axes[0].legend(frameon=False)
    finish(axes[0], show, save)
    return axes
