"""One call of :meth:`GMVAE.train`: its options checked and its schedule, the fit's callbacks
and KL warm-up from the schedule, then one fit or several restarts."""

import copy
import dataclasses
from collections.abc import Callable

import numpy as np
from lightning.pytorch import Callback
from scvi import settings

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
    check_restart_options(
        options.get("n_restarts", 1), options.get("restart_selection", "agreement")
    )
    if not model.auto_clusters:
        cells = f"training cells (scvi-tools' split of the {model.adata.n_obs} cells)"
        check_cells_fill_clusters(model.module.n_components, n_train, cells)
    return GMVAESchedule.default(
        model.adata.n_obs,
        max_epochs=max_epochs,
        warmup_epochs=warmup_epochs,
        placement_epochs=component_init_epochs,
        train_size=options.get("train_size"),
        batch_size=options.get("batch_size", 128),
        plan_kwargs=plan_kwargs,
    )


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
    check_components_placed(model.module, schedule, user_callbacks)
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

    if n_restarts == 1:
        fit()
    else:
        train_restarts(model, int(n_restarts), restart_selection, fit)


def check_components_placed(
    module, schedule: GMVAESchedule, user_callbacks: list[Callback]
) -> None:
    """Refuse a fit that never places components which all sit at one point (a new model's
    with ``component_spread=0``), unless a callback of the user's places them: every cell
    would stay in one cluster."""
    if schedule.placement_epochs or any(
        isinstance(callback, ComponentInitialization) for callback in user_callbacks
    ):
        return
    means = module.prior.means
    if bool((means == means[0]).all()):
        raise ValueError(
            "component_init_epochs places the components never, and they all sit at one "
            "point (a new model's, with component_spread=0): every cell would stay in one "
            "cluster. Leave component_init_epochs at its default, or name the epochs after "
            "which to place them."
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
