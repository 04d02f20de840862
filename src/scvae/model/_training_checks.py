"""Checks of the options of ``train()``, run before anything trains."""

import inspect
import math

from scvae._arguments import check_flag, is_real, whole_number
from scvae._result_keys import check_key_added, result_keys
from scvae.data import check_splitter_options

#: Options of ``train()`` that are ``True`` or ``False``.
TRAINING_FLAGS = frozenset({"early_stopping", "annotate", "stop_when_converged"})
#: scvi-tools' share of the cells that trains when ``train_size`` is not given.
DEFAULT_TRAIN_SIZE = 0.9


def training_cells(n_cells: int, train_size: float | None) -> int:
    """The cells scvi-tools' split of ``n_cells`` trains on (``ceil(train_size * n_cells)``)."""
    return math.ceil((DEFAULT_TRAIN_SIZE if train_size is None else train_size) * n_cells)


def check_max_epochs(max_epochs: int | None) -> None:
    """Refuse a training length that cannot train: ``None`` or a positive integer."""
    if max_epochs is not None and whole_number(max_epochs, 1) is None:
        raise ValueError(f"max_epochs must be a positive integer or None, got {max_epochs!r}.")


def check_training_options(
    model, max_epochs: int | None, plan_kwargs: dict | None, key_added: str, options: dict
) -> tuple[int | None, int, int]:
    """Refuse options of ``model.train()`` that cannot work, before anything runs (or
    anything of an earlier fit is forgotten): :func:`check_sizes`, :func:`check_plan_kwargs`,
    :func:`check_validation_needs` and the ``datasplitter_kwargs``. ``options`` are the other
    keywords of the call (``batch_size``, ``train_size``, ...). Returns what
    :func:`check_sizes` does."""
    for name in TRAINING_FLAGS & set(options):
        check_flag(options[name], name)
    train_size, validation_size = options.get("train_size"), options.get("validation_size")
    batch_size, n_cells = options.get("batch_size", 128), model.adata.n_obs
    checked = check_sizes(max_epochs, batch_size, key_added, n_cells, train_size, validation_size)
    check_plan_kwargs(plan_kwargs, model._training_plan_cls, model.module)
    check_validation_needs(
        train_size,
        validation_size,
        options.get("early_stopping", False),
        plan_kwargs,
        options,
    )
    check_splitter_options(options.get("datasplitter_kwargs"))
    check_results_keep_off_registered_columns(model.adata_manager, key_added)
    return checked


def check_results_keep_off_registered_columns(adata_manager, key_added: str) -> None:
    """Refuse a ``key_added`` whose cluster columns (``obs[f"{key_added}_cluster"]``, ...)
    are the registered batch or label column: the results would overwrite it."""
    setup = adata_manager.registry["setup_args"]
    registered = {setup.get("batch_key"): "batch_key", setup.get("labels_key"): "labels_key"}
    keys = result_keys(key_added)
    for key in (keys["cluster"], keys["confidence"]):
        if key in registered:
            raise ValueError(
                f"key_added={key_added!r} would write the clusters into adata.obs[{key!r}], "
                f"the column registered as {registered[key]}: choose another key_added."
            )


def check_sizes(
    max_epochs: int | None,
    batch_size: int,
    key_added: str,
    n_cells: int,
    train_size: float | None = None,
    validation_size: float | None = None,
) -> tuple[int | None, int, int]:
    """Refuse a training length, minibatch size, result key, number of cells, training or
    validation share that cannot work; return the length and size as Python integers
    (Lightning takes no other) and the number of training cells."""
    if n_cells < 3:
        raise ValueError(
            f"Training needs at least 3 cells, the AnnData has {n_cells}: batch normalisation "
            "estimates statistics over the cells of a minibatch, and a split of fewer cells "
            "leaves no minibatch of two."
        )
    check_max_epochs(max_epochs)
    check_key_added(key_added)
    if whole_number(batch_size, 2) is None:
        raise ValueError(
            f"batch_size must be an integer of at least 2 (batch normalisation needs two cells "
            f"per minibatch), got {batch_size!r}."
        )
    if train_size is not None and not (is_real(train_size) and 0 < train_size <= 1):
        raise ValueError(
            f"train_size is the share of cells to train on, in (0, 1]; got {train_size!r}."
        )
    if validation_size is not None and not (is_real(validation_size) and 0 <= validation_size < 1):
        raise ValueError(
            "validation_size is the share of cells held out for validation, in [0, 1); got "
            f"{validation_size!r}."
        )
    n_train = training_cells(n_cells, train_size)
    if n_train < 2:
        raise ValueError(
            f"train_size={train_size} leaves {n_train} of the {n_cells} cells for training: "
            "batch normalisation needs two per minibatch. Raise train_size."
        )
    return (None if max_epochs is None else int(max_epochs)), int(batch_size), n_train


def check_validation_needs(
    train_size: float | None,
    validation_size: float | None,
    early_stopping: bool,
    plan_kwargs: dict | None,
    trainer_kwargs: dict,
) -> None:
    """Refuse early stopping or a plateau schedule on a validation metric when no cells are
    held out for validation, and a plateau schedule on one computed only every few epochs:
    Lightning would fail only after the first epoch's steps."""
    held_out = f"train_size={train_size}"
    if validation_size is None:
        validation_size = 1.0 - (DEFAULT_TRAIN_SIZE if train_size is None else train_size)
    else:
        held_out = f"validation_size={validation_size}"
    plan_kwargs = plan_kwargs or {}
    plateau = "plan_kwargs={'reduce_lr_on_plateau': True}"
    needs = {
        "early_stopping=True": early_stopping
        and trainer_kwargs.get("early_stopping_monitor", "elbo_validation"),
        plateau: plan_kwargs.get("reduce_lr_on_plateau")
        and plan_kwargs.get("lr_scheduler_metric", "elbo_validation"),
    }
    every = trainer_kwargs.get("check_val_every_n_epoch", 1)
    for option, metric in needs.items():
        if not (metric and str(metric).endswith("_validation")):
            continue
        if validation_size <= 0:
            raise ValueError(
                f"{option} follows {metric}, but {held_out} holds out no cells for "
                "validation: hold out some (by default train_size=0.9 holds out 10%)."
            )
        if option == plateau and every != 1:
            raise ValueError(
                f"{option} follows {metric} every epoch, but check_val_every_n_epoch={every} "
                "computes it every few: validate every epoch, or follow a training metric "
                "(lr_scheduler_metric='elbo_train')."
            )


def check_plan_kwargs(plan_kwargs: dict | None, plan_cls: type, module) -> None:
    """Refuse ``plan_kwargs`` that neither the training plan nor the module's loss takes.

    Such an option would otherwise fail only inside the first training step, after the
    step had already moved the encoder's batch-normalisation statistics.
    """
    if not plan_kwargs:
        return
    known = set()
    for function in [
        cls.__dict__["__init__"] for cls in plan_cls.__mro__ if "__init__" in cls.__dict__
    ]:
        known |= _named_parameters(function)
    known |= _named_parameters(module.loss) - {"tensors", "inference_outputs", "generative_outputs"}
    unknown = sorted(set(plan_kwargs) - known)
    if unknown:
        raise TypeError(
            f"plan_kwargs {unknown} are options of neither the training plan nor the model's "
            f"loss; they take {sorted(known)}."
        )


def _named_parameters(function) -> set[str]:
    """The names a callable takes as keywords (not ``self``, ``*args`` or ``**kwargs``)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = inspect.signature(function).parameters.values()
    return {p.name for p in parameters if p.kind in kinds} - {"self", "module"}
