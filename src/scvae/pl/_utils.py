"""Figure plumbing shared by the plotting functions."""

from os import PathLike

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from scvae.model import GMVAE


def require_gmvae(model, what: str) -> None:
    """Raise ``TypeError`` naming ``what`` unless ``model`` is a :class:`~scvae.GMVAE`."""
    if not isinstance(model, GMVAE):
        raise TypeError(f"{what} needs a GMVAE, got a {type(model).__name__}: it has no clusters.")


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax``, or the axes of a new figure of size ``figsize``."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def finish(axes: Axes, show: bool | None, save: str | PathLike | None) -> None:
    """Save the figure of ``axes`` to ``save`` (if given) and show it if ``show``."""
    figure = axes.get_figure()
    if save is not None:
        figure.savefig(save, dpi=150, bbox_inches="tight")
    if show:
        plt.show()
