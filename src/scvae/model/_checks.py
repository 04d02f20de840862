"""Checks of a model's options and of the genes of an AnnData, run before anything is built."""

import inspect
import math
from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from scvae._arguments import whole_number
from scvae._constants import check_key_added
from scvae.data import InvalidCountsError, check_obs_complete, check_obs_key, validate_counts
from scvae.distributions import LIKELIHOODS, get_likelihood
from scvae.module import DISPERSIONS, batch_norm_places, hidden_widths


class GeneMismatchError(ValueError):
    """An AnnData does not have the model's genes in the model's order."""


def check_same_genes(var_names, model_var_names) -> None:
    """Raise :class:`GeneMismatchError` unless ``var_names`` equals the model's genes in order.

    The message says how many genes are missing, or how to reorder when only the order
    differs.
    """
    var_names, model_var_names = np.asarray(var_names), np.asarray(model_var_names)
    if np.array_equal(var_names, model_var_names):
        return
    missing = np.setdiff1d(model_var_names, var_names)
    if len(missing) == len(model_var_names):
        raise GeneMismatchError(
            f"None of the model's {len(model_var_names)} genes (e.g. {list(missing[:3])}) is "
            f"in the AnnData's var_names (e.g. {list(var_names[:3])}): are they another kind "
            "of gene identifier (symbols against Ensembl IDs)? Name the genes as the model does."
        )
    if len(missing):
        raise GeneMismatchError(
            f"The AnnData lacks {len(missing)} of the model's {len(model_var_names)} genes "
            f"(e.g. {list(missing[:3])}): the model reads every one of its genes. Give cells "
            "with all of them, or train a model on the genes both data sets have."
        )
    raise GeneMismatchError(
        "The AnnData has the model's genes in a different order or with extra genes; select "
        "them in the model's order first: adata = adata[:, model.adata.var_names].copy(), "
        "or for a saved model adata = adata[:, scvae.tl.saved_genes(DIR)].copy()."
    )


def cell_positions(indices, n_cells: int) -> np.ndarray | None:
    """``indices`` of a query as integer positions (``None``: all cells).

    Integer positions (negative ones count from the end, as in numpy) or a boolean mask of
    the ``n_cells`` cells; an empty selection, positions outside the cells and other values
    (floats, cell names) raise an error that says so, before any pass over the cells.
    """
    if indices is None:
        return None
    positions = np.asarray(indices)
    if positions.dtype == bool:
        if positions.shape != (n_cells,):
            raise ValueError(
                f"indices is a boolean mask of shape {positions.shape}; the AnnData has "
                f"{n_cells} cells, so a mask needs {n_cells} values."
            )
        positions = np.flatnonzero(positions)
    if positions.ndim == 0:
        raise ValueError(f"indices={indices!r} is a single position: pass a list, [{indices!r}].")
    if positions.ndim != 1 or positions.size == 0:
        raise ValueError(
            f"indices selects no cells (shape {positions.shape}); give at least one cell's "
            "position, or None for all cells."
        )
    if not np.issubdtype(positions.dtype, np.integer):
        raise TypeError(
            f"indices must be integer positions or a boolean mask, not {positions.dtype} "
            "values; for cell names use np.flatnonzero(adata.obs_names.isin(names))."
        )
    outside = positions[(positions < -n_cells) | (positions >= n_cells)]
    if len(outside):
        raise IndexError(
            f"indices has positions outside the AnnData's {n_cells} cells (e.g. {outside[0]})."
        )
    return positions


def check_architecture(
    likelihood: str,
    dispersion: str,
    scale_by_library: bool,
    piecewise_cutoff: int | None,
    n_latent: int,
    n_hidden: int | Sequence[int],
    n_layers: int,
    dropout_rate: float,
    use_batch_norm: bool | str = "encoder",
) -> list[int]:
    """Validate the architecture options of a model and return the hidden layer widths.

    Raises a :class:`ValueError` naming the bad option and the accepted values, before any
    module is built.
    """
    row = get_likelihood(likelihood)
    if dispersion not in DISPERSIONS:
        raise ValueError(f"dispersion={dispersion!r} is not one of {DISPERSIONS}.")
    if row.library_scaled and not scale_by_library:
        raise ValueError(
            f"likelihood={likelihood!r} scales rates by the library size by definition; "
            "use an unconstrained likelihood (e.g. likelihood='poisson') for free rates."
        )
    if piecewise_cutoff is not None:
        if not row.piecewise:
            wrappable = tuple(name for name, other in LIKELIHOODS.items() if other.piecewise)
            raise ValueError(
                f"The piecewise-categorical variant exists for {wrappable}, "
                f"not likelihood={likelihood!r}."
            )
        if whole_number(piecewise_cutoff, 1) is None:
            raise ValueError(
                f"piecewise_cutoff must be a positive integer, got {piecewise_cutoff}."
            )
    if whole_number(n_latent, 1) is None:
        raise ValueError(f"n_latent must be a positive integer, got {n_latent}.")
    if not 0 <= dropout_rate < 1:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}.")
    batch_norm_places(use_batch_norm)
    return hidden_widths(n_hidden, n_layers)


def check_n_clusters(n_clusters: int | str, max_clusters: int | None = None) -> None:
    """Raise ``ValueError`` unless ``n_clusters`` is ``"auto"`` or a positive integer, and
    ``max_clusters`` (when given) an integer of at least 2."""
    if n_clusters != "auto" and whole_number(n_clusters, 1) is None:
        raise ValueError(f"n_clusters must be a positive integer or 'auto', got {n_clusters!r}.")
    if max_clusters is not None and whole_number(max_clusters, 2) is None:
        raise ValueError(f"max_clusters must be an integer of at least 2, got {max_clusters}.")


def check_cells_fill_clusters(
    n_clusters: int, n_cells: int, cells: str = "cells of the AnnData"
) -> None:
    """Raise ``ValueError`` when a fit of ``n_clusters`` clusters gets only ``n_cells`` cells
    (named ``cells`` in the message; checked when training, not when a saved model is loaded
    onto a few query cells)."""
    if n_clusters > n_cells:
        raise ValueError(
            f"n_clusters={n_clusters} is more than the {n_cells} {cells}: every cluster needs "
            "cells. Ask for fewer clusters, or n_clusters='auto'."
        )


def check_piecewise_counts(adata: AnnData, layer: str | None, piecewise_cutoff: int | None) -> None:
    """Raise :class:`~scvae.data.InvalidCountsError` when a piecewise-categorical likelihood
    (``piecewise_cutoff`` given), which has one class per count, gets non-integer counts."""
    if piecewise_cutoff is None:
        return
    try:  # the counts were registered: the advice is about them, not the registration
        validate_counts(adata, layer=layer, query=True)
    except InvalidCountsError as error:
        raise InvalidCountsError(
            f"piecewise_cutoff={piecewise_cutoff} needs integer counts (one class per count): "
            f"{error} Or leave piecewise_cutoff out."
        ) from error


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
    max_epochs: int | None,
    batch_size: int,
    key_added: str,
    n_cells: int,
    train_size: float | None = None,
) -> tuple[int | None, int, int]:
    """Refuse a training length, minibatch size, result key, number of cells or training
    share that cannot work, before anything runs; return the length and size as Python
    integers (Lightning takes no other) and the number of training cells."""
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
    if train_size is not None and not 0 < train_size <= 1:
        raise ValueError(
            f"train_size is the share of cells to train on, in (0, 1]; got {train_size!r}."
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


def check_known_batches(adata: AnnData, batch_key: str | None, known: Sequence) -> None:
    """Refuse an AnnData whose cells lack a batch, or come from batches other than ``known``
    (those a model was trained on: its networks take the batch as an input)."""
    if batch_key is None:
        return
    check_obs_key(adata, batch_key, "batch_key")
    check_obs_complete(adata, batch_key, "batch_key")
    known = [batch.item() if isinstance(batch, np.generic) else batch for batch in known]
    values = [v.item() if isinstance(v, np.generic) else v for v in adata.obs[batch_key].unique()]
    unknown = [value for value in values if value not in known]
    if not unknown:
        return
    if {str(value) for value in unknown} <= {str(batch) for batch in known}:
        kind = type(known[0]).__name__
        raise ValueError(
            f"adata.obs[{batch_key!r}] holds the model's batches as "
            f"{type(unknown[0]).__name__} ({unknown[:3]}), the model as {kind} ({known[:3]}): "
            f"convert the column first, adata.obs[{batch_key!r}] = "
            f"adata.obs[{batch_key!r}].astype({kind})."
        )
    raise ValueError(
        f"adata.obs[{batch_key!r}] has batches the model was not trained on: "
        f"{sorted(map(str, unknown))}. The model knows {known}; it can only embed cells of "
        f"those batches: select them, adata[adata.obs[{batch_key!r}].isin(known)].copy(), "
        "or train a model with the new batches."
    )
