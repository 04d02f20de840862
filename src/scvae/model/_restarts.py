"""Several GMVAE fits from fresh weights, and the rule that keeps one of them."""

from collections.abc import Callable

import numpy as np

from scvae._arguments import whole_number
from scvae._random import seeded
from scvae.train import mean_agreements

#: How :meth:`GMVAE.train` picks one of its restarts.
RESTART_SELECTIONS = ("elbo", "agreement")


def check_restart_options(n_restarts: int, selection: str) -> None:
    """Raise ``ValueError`` unless ``n_restarts`` is a positive integer and ``selection`` one
    of :data:`RESTART_SELECTIONS`."""
    if whole_number(n_restarts, 1) is None:
        raise ValueError(f"n_restarts must be a positive integer, got {n_restarts}.")
    if selection not in RESTART_SELECTIONS:
        raise ValueError(
            f"restart_selection must be one of {RESTART_SELECTIONS}, got {selection!r}."
        )


def select_restart(
    elbos: np.ndarray, agreements: np.ndarray, selection: str, n_clusters: np.ndarray
) -> int:
    """Index of the restart that ``restart_selection=selection`` keeps (see :meth:`GMVAE.train`).

    ``"elbo"``: the highest ELBO; ``"agreement"``: the highest agreement, ties to the higher
    ELBO, among the fits with more than one cluster in use (``n_clusters``) if there are any:
    fits that put every cell in one cluster agree with each other perfectly.
    """
    keys = (elbos, agreements, n_clusters > 1) if selection == "agreement" else (elbos,)
    return int(np.lexsort(keys)[-1])  # lexsort sorts by its last key first


def training_elbo(model) -> float:
    """ELBO per cell of ``model`` on its training cells, from the same draws of z for every fit."""
    with seeded(0, model.device):
        return model.get_elbo(indices=model.train_indices)


def train_restarts(
    model, n_restarts: int, selection: str, fit: Callable[[list[np.ndarray] | None], None]
) -> None:
    """Fit ``model`` ``n_restarts`` times and keep the fit ``selection`` picks.

    The first fit starts from the current weights, the others from a fresh module
    (``model._build_module()``), each on the first fit's training, validation and test cells
    (``fit(split)``), so that every restart is trained, scored and compared on the same
    cells, whether or not ``scvi.settings.seed`` fixes the split. Each restart's ELBO on the
    training cells and its mean agreement with the other restarts are left in
    ``model.restart_elbos_`` and ``model.restart_agreements_``. If a restart fails, the model
    keeps the fit chosen among the finished ones and the error is raised.
    """
    fits, elbos, clusters, split = [], [], [], None
    try:
        for restart in range(n_restarts):
            if restart:  # new weights from the global random state, which the user seeded
                model.module = model._build_module()
                # A fresh history: scvi-tools would append to the previous fit's in place.
                model.history_, model.is_trained_ = None, False
            fit(split)
            if split is None:
                split = [
                    np.asarray(indices)
                    for indices in (
                        model.train_indices,
                        model.validation_indices,
                        model.test_indices,
                    )
                ]
            fits.append((model.module, model.history_, model.schedule_))
            elbos.append(training_elbo(model))
            clusters.append(model.predict(indices=model.train_indices))
    finally:  # also when a restart fails: keep the chosen one of the finished fits
        if fits:
            model.restart_elbos_ = np.array(elbos)
            model.restart_agreements_ = mean_agreements(clusters)
            n_clusters = np.array([len(np.unique(labels)) for labels in clusters])
            kept = select_restart(
                model.restart_elbos_, model.restart_agreements_, selection, n_clusters
            )
            (model.module, model.history_, model.schedule_), model.is_trained_ = fits[kept], True
