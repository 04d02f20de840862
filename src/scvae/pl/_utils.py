"""Figure plumbing shared by the plotting functions."""

from os import PathLike

import matplotlib.pyplot as plt
from matplotlib.axes import Axes


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
