"""How long a fit trains, and when in it the GMVAE's components are placed.

A GMVAE fit has two phases. Until its components are placed it is a VAE (every component at
the origin) whose KL weight warms up from 0 to 1; then k-means on the latent means places the
components, and the mixture trains until its clustering and its ELBO have settled
(:class:`~scvae.train.ClusterConvergence`).

The components are placed twice. The first placement is made on the latent space of a VAE,
whose standard normal prior does not make cell types compact; trained against the mixture,
the encoder then gathers each component's cells around it, but a component placed across two
cell types, or two components on one, stay so (the gradient moves cells to components, not
components across the space). The second placement, after :data:`REPLACEMENT_STEPS` more
steps, clusters the latent space the mixture has shaped, where such errors show, and the
mixture trains on from there.

Every phase is measured in optimisation steps, then rounded to whole epochs (at least one
each, as the components are placed at the end of an epoch), so that data sets of different
sizes get about the same schedule in steps: with 128 cells per minibatch and 90% of the cells
training, five thousand cells warm up over 28 epochs and a thousand over 125; from about
100,000 cells (700 steps an epoch) every phase lasts one epoch.
"""

import math
from dataclasses import dataclass

import numpy as np

from scvae._arguments import integer_at_least

from ._training_checks import training_cells

#: scvi-tools' rule for the default number of epochs: 400 up to 20,000 cells, then fewer in
#: proportion, so that large data sets get about 8 million cell visits.
EPOCH_RULE_CELLS, EPOCH_RULE_EPOCHS = 20_000, 400
#: Steps of KL warm-up of a GMVAE before its components are placed.
WARMUP_STEPS = 1000
#: Steps at full KL weight between the end of the warm-up and the first placement, and
#: after the last placement at least.
SETTLE_STEPS = 500
#: Steps of mixture training between the first placement and the second.
REPLACEMENT_STEPS = 1000


def default_max_epochs(n_obs: int) -> int:
    """scvi-tools' default training length for ``n_obs`` cells (at least one epoch)."""
    return max(1, min(EPOCH_RULE_EPOCHS, round(EPOCH_RULE_CELLS * EPOCH_RULE_EPOCHS / n_obs)))


def kl_warmup_within(plan_kwargs: dict | None, max_epochs: int | None, n_obs: int) -> dict:
    """``plan_kwargs`` with a KL warm-up that ends by the last epoch: scvi-tools' 400 epochs,
    or ``max_epochs`` (by default scvi-tools' number for ``n_obs`` cells) where fewer. A
    warm-up given in ``plan_kwargs`` is kept."""
    plan_kwargs = dict(plan_kwargs or {})
    if not plan_sets_warmup(plan_kwargs):
        epochs = max_epochs or default_max_epochs(n_obs)
        plan_kwargs["n_epochs_kl_warmup"] = min(EPOCH_RULE_EPOCHS, epochs)
    return plan_kwargs


def plan_sets_warmup(plan_kwargs: dict) -> bool:
    """Whether ``plan_kwargs`` set the KL warm-up: ``n_epochs_kl_warmup`` (``None``: no
    warm-up), or ``n_steps_kl_warmup`` other than ``None`` (which leaves the default)."""
    return "n_epochs_kl_warmup" in plan_kwargs or plan_kwargs.get("n_steps_kl_warmup") is not None


def steps_per_epoch(n_obs: int, train_size: float | None, batch_size: int) -> int:
    """Optimisation steps in one epoch over the training cells of ``n_obs`` (scvi-tools'
    split with minibatches of ``batch_size`` cells, :func:`training_cells`)."""
    full, rest = divmod(training_cells(n_obs, train_size, batch_size), batch_size)
    # The splitter leaves out a last minibatch of one cell after full ones (TensorDataSplitter).
    return max(1, full + (rest > 1 or (rest == 1 and full == 0)))


def epochs_for(steps: int, steps_in_epoch: int) -> int:
    """Whole epochs (at least one) that contain about ``steps`` steps."""
    return max(1, round(steps / steps_in_epoch))


@dataclass(frozen=True)
class GMVAESchedule:
    """The epochs of a GMVAE fit (see the module docstring).

    Parameters
    ----------
    max_epochs
        Epochs at most.
    warmup_epochs
        Epochs of KL warm-up (the weight rises linearly from 0 to 1).
    placement_epochs
        Epochs (counted from 1) after which the components are placed.
    first_epoch
        Epochs already in the model's history before this fit (a model trained again
        continues its history), so that plots can place this fit's epochs in it.
    """

    max_epochs: int
    warmup_epochs: int
    placement_epochs: tuple[int, ...]
    first_epoch: int = 0

    @classmethod
    def default(
        cls,
        n_obs: int,
        *,
        max_epochs: int | None = None,
        warmup_epochs: int | None = None,
        placement_epochs: int | tuple[int, ...] | None = None,
        train_size: float | None = None,
        batch_size: int = 128,
        plan_kwargs: dict | None = None,
    ) -> "GMVAESchedule":
        """The schedule of a fit on ``n_obs`` cells; given values override the defaults.

        By default the warm-up lasts :data:`WARMUP_STEPS` steps, the components are placed
        :data:`SETTLE_STEPS` steps later and again :data:`REPLACEMENT_STEPS` steps after that,
        and training lasts at most scvi-tools' number of epochs for the data size, or
        :data:`SETTLE_STEPS` steps longer than the second placement if that is more. A
        ``max_epochs`` too short for that schedule gets the warm-up over its first 30%, and
        the placements at their usual distances after it where they fit; where they do not,
        the first after half of the epochs (or at the end of a longer warm-up) and the second
        halfway through the epochs left after the first. A KL
        warm-up in ``plan_kwargs`` (scvi-tools' ``n_epochs_kl_warmup`` or
        ``n_steps_kl_warmup``) is the schedule's warm-up.

        Parameters
        ----------
        n_obs
            Number of cells registered (training and validation).
        max_epochs
            Epochs at most; ``None``: the default.
        warmup_epochs
            Epochs of KL warm-up; ``None``: the default (or the warm-up in ``plan_kwargs``).
        placement_epochs
            Epochs (counted from 1) after which the components are placed (``0`` entries are
            dropped); ``None``: the default.
        train_size
            Share of the cells that trains, as :meth:`~scvae.model.ScvaeModel.train` takes it.
        batch_size
            Cells per minibatch.
        plan_kwargs
            The training plan's options, read for a KL warm-up.

        Raises
        ------
        ValueError
            A warm-up given twice, warm-up or placement epochs that are not integers of at
            least 0, placements after ``max_epochs``, or a warm-up lasting all ``max_epochs``
            with no placements given.
        """
        steps = steps_per_epoch(n_obs, train_size, batch_size)
        settle = epochs_for(SETTLE_STEPS, steps)
        replacement = epochs_for(REPLACEMENT_STEPS, steps)
        default_end = epochs_for(WARMUP_STEPS, steps) + 2 * settle + replacement
        warmup_epochs = _warmup_epochs(warmup_epochs, plan_kwargs or {}, steps)
        for epoch in () if placement_epochs is None else _as_tuple(placement_epochs):
            _check_epochs(epoch, "component_init_epochs", minimum=0)
        given = max_epochs is not None and warmup_epochs is not None
        if given and placement_epochs is None and warmup_epochs >= max_epochs:
            raise ValueError(
                f"The KL warm-up of {warmup_epochs} epochs lasts all max_epochs={max_epochs}: "
                "the components would be placed only at its end, and the mixture would not "
                "train. Warm up over fewer epochs than max_epochs (or name the placements, "
                "component_init_epochs)."
            )
        if max_epochs is not None and max_epochs < default_end and warmup_epochs is None:
            warmup_epochs = max(1, (3 * max_epochs) // 10)
        if warmup_epochs is None:
            warmup_epochs = epochs_for(WARMUP_STEPS, steps)
        if placement_epochs is None:
            first = warmup_epochs + settle
            placement_epochs = (first, first + replacement)
            if max_epochs is not None and placement_epochs[-1] > max_epochs:
                first = min(max_epochs, max(warmup_epochs, max_epochs // 2, 1))
                placement_epochs = (first, first + (max_epochs - first) // 2)
        placement_epochs = tuple(sorted({int(e) for e in _as_tuple(placement_epochs) if e > 0}))
        if max_epochs is None:  # the warm-up and the placements, then time to settle
            last = max((*placement_epochs, warmup_epochs))
            max_epochs = max(default_max_epochs(n_obs), last + settle)
        late = [epoch for epoch in placement_epochs if epoch > max_epochs]
        if late:
            raise ValueError(
                f"component_init_epochs {late} are beyond max_epochs={max_epochs}: the "
                "components would never be placed. Use epochs <= max_epochs."
            )
        return cls(int(max_epochs), int(warmup_epochs), placement_epochs)

    @property
    def last_placement(self) -> int:
        """The epoch after which the components are last placed (0: never)."""
        return max(self.placement_epochs, default=0)

    @property
    def mixture_start(self) -> int:
        """The epoch after which the mixture trains in its final form: the last placement
        made and the KL weight at 1. Stopping rules wait for it."""
        return max(self.last_placement, self.warmup_epochs)


def _as_tuple(epochs: int | tuple[int, ...]) -> tuple[int, ...]:
    return (epochs,) if np.ndim(epochs) == 0 else tuple(epochs)


def _check_epochs(epochs, name: str, minimum: int) -> None:
    """Refuse a number of epochs that is not an integer of at least ``minimum``."""
    if epochs is not None and not integer_at_least(epochs, minimum):
        raise ValueError(f"{name} must be integers of at least {minimum}, got {epochs!r}.")


def _warmup_epochs(warmup_epochs: int | None, plan_kwargs: dict, steps: int) -> int | None:
    """The warm-up epochs given, as ``warmup_epochs`` or in ``plan_kwargs`` as scvi-tools'
    plan reads them (epochs before steps; steps in whole epochs; neither: none), or ``None``."""
    _check_epochs(warmup_epochs, "warmup_epochs", minimum=0)
    if not plan_sets_warmup(plan_kwargs):
        return warmup_epochs
    if warmup_epochs is not None:
        raise ValueError(
            "The KL warm-up is given twice, as warmup_epochs and in plan_kwargs "
            "(n_epochs_kl_warmup or n_steps_kl_warmup): give it once."
        )
    if plan_kwargs.get("n_epochs_kl_warmup"):
        return plan_kwargs["n_epochs_kl_warmup"]
    n_steps = plan_kwargs.get("n_steps_kl_warmup")
    return math.ceil(n_steps / steps) if n_steps else 0
