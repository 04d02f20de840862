"""Checks of the cells a model is asked about: their genes, batches and positions."""

from collections.abc import Sequence

import numpy as np
from anndata import AnnData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager

from scvae.data import check_obs_complete, check_obs_key


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


def check_registered_batches(adata: AnnData, adata_manager: AnnDataManager) -> None:
    """Refuse a new AnnData with cells of batches other than those registered in a model's
    ``adata_manager`` (:func:`check_known_batches`)."""
    batch_key = adata_manager.registry["setup_args"].get("batch_key")
    state = adata_manager.get_state_registry(REGISTRY_KEYS.BATCH_KEY)
    check_known_batches(adata, batch_key, state.categorical_mapping)


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
