"""Plots of scvae models and results (``scvae.pl``, matplotlib, as in scanpy).

Every function draws on ``ax`` (a new figure by default), returns its axes, saves the figure
to ``save`` when given and calls :func:`matplotlib.pyplot.show` when ``show=True``.
"""

from ._cluster_selection import cluster_selection
from ._clusters import cluster_probabilities, cluster_profiles
from ._comparison import model_comparison
from ._training import training_curves

__all__ = [
    "cluster_probabilities",
    "cluster_profiles",
    "cluster_selection",
    "model_comparison",
    "training_curves",
]
