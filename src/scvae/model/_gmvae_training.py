"""One call of :meth:`GMVAE.train`: its options checked and its schedule, the fit's callbacks
and KL warm-up from the schedule, then one fit or several restarts."""

import copy
import dataclasses
from collections.abc import Callable

import numpy as np
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import EarlyStopping
from scvi import settings

from scvae._warnings import warn
from scvae.train import ClusterConvergence, ComponentInitialization, as_callback_list

from ._option_checks import check_cells_fill_clusters
from ._restarts import check_restart_options, train_restarts
from ._schedule import GMVAESchedule, plan_sets_warmup
from ._training_checks import check_training_options


def checked_schedule(
    model, max_epochs, warmup_epochs, component_init_epochs, plan_kwargs, key_added, options
) -> GMVAESchedule:
    """Refuse options of ``model.train()`` (a GMVAE's) that cannot work, before anything
    trains; the fit's schedule. The arguments are :meth:`GMVAE.train`'s, ``options`` its
    other keywords (:func:`scvae.tl.compare_models` checks its GMVAEs' options so too)."""
    n_train = check_training_options(model, max_epochs, plan_kwargs, key_added, options)[2]
    n_restarts = options.get("n_restarts", 1)
    check_restart_options(n_restarts, options.get("restart_selection", "agreement"))
    if not model.auto_clusters:
        cells = f"training cells (scvi-tools' split of the {model.adata.n_obs} cells)"
        check_cells_fill_clusters(model.module.n_components, n_train, cells)
    schedule = GMVAESchedule.default(
        model.adata.n_obs,
        max_epochs=max_epochs,
        warmup_epochs=warmup_epochs,
        placement_epochs=component_init_epochs,
        train_size=options.get("train_size"),
        batch_size=options.get("batch_size", 128),
        plan_kwargs=plan_kwargs,
    )
    user_callbacks = as_callback_list(options.get("callbacks"))
    check_components_placed(model, schedule, user_callbacks, n_restarts)
    return schedule


def fit_gmvae(
    model,
    train_once: Callable[..., None],
    schedule: GMVAESchedule,
    *,
    n_restarts: int,
    restart_selection: str,
    component_init_method: str,
    stop_when_converged: bool,
    plan_kwargs: dict | None,
    key_added: str,
    kwargs: dict,
) -> None:
    """Train ``model`` (a GMVAE) on ``schedule``, once or ``n_restarts`` times, with
    ``train_once`` (:meth:`ScvaeModel.train`); the arguments are :meth:`GMVAE.train`'s.

    The components are placed at the schedule's epochs (:class:`ComponentInitialization`),
    training stops once the clustering has settled (:class:`ClusterConvergence`, with
    ``stop_when_converged``) and the KL weight warms up over the schedule's warm-up unless
    ``plan_kwargs`` sets one. Every restart starts from fresh copies of the user's callbacks
    as given, so that a stateful one (``EarlyStopping``) does not carry one fit's state into
    the next.
    """
    kwargs = dict(kwargs)  # the caller's options stay as given
    user_callbacks = as_callback_list(kwargs.pop("callbacks", None))
    as_given = copies_for_restarts(user_callbacks) if n_restarts > 1 else []
    own_callbacks: list[Callback] = []
    if schedule.placement_epochs:
        own_callbacks.append(
            ComponentInitialization(
                schedule.placement_epochs, seed=settings.seed or 0, method=component_init_method
            )
        )
    if stop_when_converged:
        own_callbacks.append(ClusterConvergence(start_epoch=schedule.mixture_start))
    if kwargs.get("early_stopping"):  # not before the mixture has its final placement
        kwargs.setdefault("early_stopping_warmup_epochs", schedule.mixture_start)
    plan_kwargs = dict(plan_kwargs or {})
    if not plan_sets_warmup(plan_kwargs):
        plan_kwargs["n_epochs_kl_warmup"] = schedule.warmup_epochs

    def fit(split: list[np.ndarray] | None = None) -> None:
        history = model.history_ if model.is_trained_ else None
        first_epoch = len(history["elbo_train"]) if history and "elbo_train" in history else 0
        model.schedule_ = dataclasses.replace(schedule, first_epoch=first_epoch)
        callbacks, options = user_callbacks, kwargs
        if split is not None:  # a restart: the first fit's cells, the callbacks as given
            splitter = {**(kwargs.get("datasplitter_kwargs") or {}), "external_indexing": split}
            options = {**kwargs, "datasplitter_kwargs": splitter}
            callbacks = copy.deepcopy(as_given)
        train_once(
            schedule.max_epochs,
            plan_kwargs=plan_kwargs,
            annotate=False,
            key_added=key_added,
            callbacks=[*callbacks, *own_callbacks],
            **options,
        )
        placement = last_placement(schedule, callbacks)
        warn_if_stopped_before_placement(model, first_epoch, placement, schedule.max_epochs)

    if n_restarts == 1:
        fit()
    else:
        train_restarts(model, int(n_restarts), restart_selection, fit)


def check_components_placed(
    model, schedule: GMVAESchedule, user_callbacks: list[Callback], n_restarts: int = 1
) -> None:
    """Refuse a fit that never places components which all sit at one point, unless a
    :class:`ComponentInitialization` of the user's places them within ``max_epochs``: every
    cell would stay in one cluster. They sit so in a new model (with ``component_spread=0``),
    and in every restart after the first (``n_restarts > 1``), which starts from a new
    module."""
    if last_placement(schedule, user_callbacks):
        return
    never = "component_init_epochs places the components never"
    late = sorted(set(_callback_placements(user_callbacks)))
    if late:
        never += (
            f" (nor does the ComponentInitialization among the callbacks: its epochs {late} "
            f"are beyond max_epochs={schedule.max_epochs})"
        )
    means = model.module.prior.means
    if bool((means == means[0]).all()):
        raise ValueError(
            f"{never}, and they all sit at one point (a new model's, with "
            "component_spread=0): every cell would stay in one cluster. Leave "
            "component_init_epochs at its default, or name the epochs after which to place "
            "them."
        )
    if n_restarts > 1 and not model._module_kwargs.get("component_spread"):
        raise ValueError(
            f"{never}, and n_restarts={n_restarts} trains every restart after the first "
            "from a new module, whose components all sit at one point (component_spread=0): "
            "every cell of those restarts would stay in one cluster. Leave "
            "component_init_epochs at its default (or name the epochs after which to place "
            "them), or train once (n_restarts=1)."
        )


def last_placement(schedule: GMVAESchedule, callbacks: list[Callback]) -> int:
    """The epoch after which a fit on ``schedule`` places its components last (0: never): the
    schedule's placements and those of any :class:`ComponentInitialization` among the
    user's ``callbacks`` that come within its ``max_epochs``."""
    placements = [e for e in _callback_placements(callbacks) if e <= schedule.max_epochs]
    return max((schedule.last_placement, *placements))


def _callback_placements(callbacks: list[Callback]) -> list[int]:
    """The epochs after which the :class:`ComponentInitialization` callbacks among
    ``callbacks`` place the components."""
    return [
        epoch
        for callback in callbacks
        if isinstance(callback, ComponentInitialization)
        for epoch in callback.epochs
    ]


def warn_if_stopped_before_placement(
    model, first_epoch: int, placement: int, max_epochs: int
) -> None:
    """Warn when the fit just made (its epochs in ``model.history_`` after ``first_epoch``)
    ended by epoch ``placement``, after which its components are placed last, and before
    ``max_epochs`` (a schedule compressed into one epoch places at its end by design): a
    callback stopped it (a user's Lightning ``EarlyStopping``; scvae's own early stopping
    waits for the placements), or ``max_steps``, ``max_time`` or an interruption did, and
    the mixture never trained on its final placement (before the first, every cell is in
    one cluster)."""
    history = model.history_ or {}
    if "elbo_train" not in history:
        return
    n_epochs = len(history["elbo_train"]) - first_epoch
    if n_epochs > placement or n_epochs >= max_epochs:
        return
    trainer = getattr(model, "trainer", None)
    stoppers = [
        f"{type(callback).__name__}(monitor={callback.monitor!r})"
        for callback in getattr(trainer, "callbacks", [])
        if isinstance(callback, EarlyStopping)
        and (callback.stopped_epoch or getattr(callback, "stopping_reason_message", None))
    ]
    cause = " and ".join(stoppers) or "a callback, max_steps, max_time or an interruption"
    when = "at" if n_epochs == placement else "before"
    warn(
        f"Training ended after epoch {n_epochs}, {when} the components' last placement after "
        f"epoch {placement}: {cause} stopped it. The clusters are those of a mixture that "
        "never trained on its final placement (before the first placement, every cell is in "
        "one cluster). Stop early with early_stopping=True instead, which scvae holds back "
        f"until the placements are made, or pass the trainer option min_epochs well beyond "
        f"{placement}."
    )


def copies_for_restarts(callbacks: list[Callback]) -> list[Callback]:
    """A copy of the user's ``callbacks`` as given, from which each restart gets its own."""
    try:
        return copy.deepcopy(callbacks)
    except Exception as error:  # a callback holding a lock, a file or a process
        raise TypeError(
            "n_restarts > 1 gives every restart its own copy of the callbacks, and copying "
            f"them failed ({type(error).__name__}: {error}); pass callbacks that can be "
            "copied, or train with n_restarts=1."
        ) from error
