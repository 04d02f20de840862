"""Checks of the options of ``train()``, run before anything trains."""

import inspect
import math

from scvae._arguments import check_flag, is_real, whole_number
from scvae._result_keys import check_key_added, result_keys
from scvae.data import check_splitter_options
from scvae.train import logged_metrics

#: Options of ``train()`` that are ``True`` or ``False``.
TRAINING_FLAGS = frozenset({"early_stopping", "annotate", "stop_when_converged"})
#: scvi-tools' share of the cells that trains when ``train_size`` is not given.
DEFAULT_TRAIN_SIZE = 0.9
#: ``train()``'s cells per minibatch when ``batch_size`` is not given.
DEFAULT_BATCH_SIZE = 128
#: Plateau-schedule options, and what early stopping and the schedule follow by default.
PLATEAU = "plan_kwargs={'reduce_lr_on_plateau': True}"
DEFAULT_MONITOR = "elbo_validation"


def split_sizes(
    n_cells: int,
    train_size: float | None = None,
    validation_size: float | None = None,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
    datasplitter_kwargs: dict | None = None,
) -> tuple[int, int]:
    """The training and validation cells of scvi-tools' split of ``n_cells``, counted as its
    :class:`~scvi.dataloaders.DataSplitter` counts them (scvi-tools' ``validate_data_split``,
    a private function, whose arithmetic this repeats; the options are assumed valid).

    ``ceil(train_size * n_cells)`` cells train, and ``n_cells`` less those, or
    ``floor(validation_size * n_cells)``, are held out for validation. Without ``train_size``
    (0.9), a last minibatch of 1 or 2 cells (``n_train % batch_size``) is moved out of the
    training cells, to the validation cells if there are any (else to neither), unless
    ``datasplitter_kwargs`` sets ``drop_last``. With ``external_indexing`` there, its first
    two index arrays are the training and validation cells.

    Parameters
    ----------
    n_cells
        Cells registered.
    train_size, validation_size, batch_size
        As :meth:`~scvae.model.ScvaeModel.train` takes them.
    datasplitter_kwargs
        As :meth:`~scvae.model.ScvaeModel.train` takes them (``drop_last``,
        ``external_indexing``).

    Returns
    -------
    The number of training cells and of validation cells.
    """
    splitter = datasplitter_kwargs or {}
    external = splitter.get("external_indexing")
    if isinstance(external, list | tuple):
        sizes = [0 if indices is None else len(indices) for indices in (*external, None, None)]
        return sizes[0], sizes[1]
    n_train = math.ceil((train_size or DEFAULT_TRAIN_SIZE) * n_cells)
    if validation_size is None:
        n_validation = n_cells - n_train
    else:
        n_validation = math.floor(n_cells * validation_size)
    short = n_train % batch_size if batch_size else 0
    if 0 < short < 3 and splitter.get("drop_last", False) is False and not train_size:
        n_train -= short
        if n_validation > 0:
            n_validation += short
    return n_train, n_validation


def training_cells(
    n_cells: int, train_size: float | None, batch_size: int | None = DEFAULT_BATCH_SIZE
) -> int:
    """The cells scvi-tools' split of ``n_cells`` trains on, with ``train_size`` and
    minibatches of ``batch_size`` cells (:func:`split_sizes`)."""
    return split_sizes(n_cells, train_size, batch_size=batch_size)[0]


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
    batch_size, n_cells = options.get("batch_size", DEFAULT_BATCH_SIZE), model.adata.n_obs
    splitter = options.get("datasplitter_kwargs")
    check_splitter_options(splitter)
    checked = check_sizes(
        max_epochs, batch_size, key_added, n_cells, train_size, validation_size, splitter
    )
    check_plan_kwargs(plan_kwargs, model._training_plan_cls, model.module)
    n_validation = split_sizes(n_cells, train_size, validation_size, batch_size, splitter)[1]
    check_validation_needs(
        n_cells,
        n_validation,
        held_out_by(train_size, validation_size, splitter),
        options.get("early_stopping", False),
        plan_kwargs,
        options,
        logged_metrics(model.module),
    )
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
    datasplitter_kwargs: dict | None = None,
) -> tuple[int | None, int, int]:
    """Refuse a training length, minibatch size, result key, number of cells, training or
    validation share that cannot work; return the length and size as Python integers
    (Lightning takes no other) and the number of training cells (:func:`split_sizes`)."""
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
    external = (datasplitter_kwargs or {}).get("external_indexing") is not None
    shares = (train_size or DEFAULT_TRAIN_SIZE) + (validation_size or 0)
    if not external and shares > 1:  # external indices set the split instead of the shares
        raise ValueError(
            f"train_size={train_size or DEFAULT_TRAIN_SIZE} and validation_size="
            f"{validation_size} add up to more than all the cells: lower one of them."
        )
    n_train = split_sizes(
        n_cells, train_size, validation_size, int(batch_size), datasplitter_kwargs
    )[0]
    if n_train < 2:
        raise ValueError(
            f"The split leaves {n_train} of the {n_cells} cells for training (train_size="
            f"{train_size or DEFAULT_TRAIN_SIZE}{', external_indexing' if external else ''}): "
            "batch normalisation needs two per minibatch. Train on more cells."
        )
    return (None if max_epochs is None else int(max_epochs)), int(batch_size), n_train


def held_out_by(
    train_size: float | None,
    validation_size: float | None,
    datasplitter_kwargs: dict | None,
) -> str:
    """The options that decide how many cells are held out for validation, in words for
    error messages."""
    if (datasplitter_kwargs or {}).get("external_indexing") is not None:
        return "datasplitter_kwargs['external_indexing']"
    given = [
        f"{name}={value}"
        for name, value in [("train_size", train_size), ("validation_size", validation_size)]
        if value is not None
    ]
    return " and ".join(given) or f"the default train_size={DEFAULT_TRAIN_SIZE}"


def check_validation_needs(
    n_cells: int,
    n_validation: int,
    held_out: str,
    early_stopping: bool,
    plan_kwargs: dict | None,
    trainer_kwargs: dict,
    metrics: tuple[str, ...],
) -> None:
    """Refuse early stopping or a plateau schedule that follows a metric the training plan
    does not log (``metrics``, :func:`~scvae.train.logged_metrics`), or a validation metric
    when none of the ``n_cells`` is held out for validation (``n_validation``, as the options
    named in ``held_out`` split them), and a plateau schedule on one computed only every few
    epochs: Lightning would fail only after the first epoch's steps."""
    plan_kwargs = plan_kwargs or {}
    needs = {
        "early_stopping=True": early_stopping
        and trainer_kwargs.get("early_stopping_monitor", DEFAULT_MONITOR),
        PLATEAU: plan_kwargs.get("reduce_lr_on_plateau")
        and plan_kwargs.get("lr_scheduler_metric", DEFAULT_MONITOR),
    }
    every = trainer_kwargs.get("check_val_every_n_epoch", 1)
    for option, metric in needs.items():
        if not metric:
            continue
        if metric not in metrics:
            name = "lr_scheduler_metric" if option == PLATEAU else "early_stopping_monitor"
            raise ValueError(
                f"{option} follows {name}={metric!r}, which the training plan does not log: "
                f"follow one of {list(metrics)}."
            )
        if not str(metric).endswith("_validation") and metric != "validation_loss":
            continue
        if n_validation <= 0:
            raise ValueError(
                f"{option} follows {metric}, but {held_out} holds out no cells of the "
                f"{n_cells} for validation: hold out at least one (a lower train_size, or a "
                "validation_size above 0), or follow a training metric such as 'elbo_train'."
            )
        if option == PLATEAU and every != 1:
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
    if "kl_weight" in plan_kwargs:
        raise ValueError(
            "plan_kwargs={'kl_weight': ...} would be overwritten at every step: the training "
            "plan sets the KL weight from its warm-up. Set its range with max_kl_weight (and "
            "min_kl_weight, where the warm-up starts) in plan_kwargs instead."
        )
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
