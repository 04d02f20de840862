"""Checks that a matrix really holds raw counts, run before anything is registered or trained."""

from collections.abc import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from scvae._arguments import check_flag
from scvae._warnings import warn

#: Rows checked at a time, so that a backed or very large matrix is never densified whole.
CHUNK_ROWS = 10_000
#: Largest count accepted: 2^24, above which float32 (the models' precision) no longer holds
#: every integer, far above any UMI count of one gene in one cell.
MAX_COUNT = 2**24


class InvalidCountsError(ValueError):
    """The matrix given as counts cannot be raw counts (negative, non-finite, non-integer...)."""


def check_obs_key(adata: AnnData, key: str | None, name: str) -> None:
    """Raise a :class:`KeyError` listing ``adata.obs``'s columns unless ``key`` is one of them
    (or ``None``); ``name`` is the argument's name in the message."""
    if key is not None and key not in adata.obs:
        raise KeyError(f"{name}={key!r} is not a column of adata.obs (columns: {list(adata.obs)}).")


def check_obs_complete(
    adata: AnnData, key: str | None, name: str, *, what: str = "value", fix: str | None = None
) -> None:
    """Raise a :class:`ValueError` if the ``adata.obs`` column ``key`` lacks a value (NaN) for
    some cells: a batch or label must be known for every cell; ``name`` is the argument's
    name in the message, ``what`` the kind of value and ``fix`` what to do (by default: give
    those cells one, or drop them)."""
    if key is None:
        return
    missing = adata.obs[key].isna().to_numpy()
    if missing.any():
        if fix is None:
            fix = (
                f"Give them one (e.g. adata.obs[{key!r}] = adata.obs[{key!r}].astype(str) turns "
                "NaN into 'nan', a category of its own) or drop those cells."
            )
        raise ValueError(
            f"{name}={key!r}: {int(missing.sum())} of {adata.n_obs} cells have no {what} in "
            f"adata.obs[{key!r}] (NaN, e.g. {list(adata.obs_names[missing][:3])}). {fix}"
        )


def warn_small_batches(adata: AnnData, batch_key: str | None, *, minimum: int = 3) -> None:
    """Warn when some batches of the ``adata.obs`` column ``batch_key`` have fewer than
    ``minimum`` cells: the decoder cannot learn their effect, and a column with about one
    batch per cell is not a batch."""
    if batch_key is None:
        return
    sizes = adata.obs[batch_key].value_counts()
    small = sizes[(sizes > 0) & (sizes < minimum)]
    if len(small):
        warn(
            f"batch_key={batch_key!r}: {len(small)} of its {int((sizes > 0).sum())} batches "
            f"have fewer than {minimum} cells (e.g. {small.index[0]!r}: {int(small.iloc[0])}), "
            "too few for the model to learn their effect. A batch is a group of cells "
            "measured together (a sample, a run, a donor): is it the right column?"
        )


def warn_repeated_names(adata: AnnData) -> None:
    """Warn when gene or cell names are repeated: a model's genes are matched to other data
    by name, and results are written and read back by cell name."""
    for kind, names, where in (("gene", adata.var_names, "var"), ("cell", adata.obs_names, "obs")):
        repeated = names[names.duplicated()]
        if len(repeated):
            warn(
                f"{len(repeated)} {kind} names repeat an earlier one (e.g. {repeated[0]!r}): "
                f"data are matched to a model by name. Make them unique first, "
                f"adata.{where}_names_make_unique()."
            )


def check_obs_sortable(adata: AnnData, key: str | None, name: str) -> None:
    """Raise a :class:`ValueError` if the values of the ``adata.obs`` column ``key`` (NaN
    aside; a categorical column's categories) mix types that cannot be ordered, such as
    integers and strings: scvi-tools sorts them into category codes, and fails after writing
    some of them into ``adata``; ``name`` is the argument's name in the message."""
    if key is None:
        return
    column = adata.obs[key]
    if isinstance(column.dtype, pd.CategoricalDtype):
        values = column.cat.categories.to_numpy()
    else:
        values = column.dropna().to_numpy()
    try:
        np.unique(values)
    except TypeError:
        types = sorted({type(value).__name__ for value in values})
        raise ValueError(
            f"{name}={key!r}: adata.obs[{key!r}] mixes values of types {types}, which cannot be "
            f"sorted into categories. Convert them to one type, e.g. adata.obs[{key!r}] = "
            f"adata.obs[{key!r}].map(str, na_action='ignore')."
        ) from None


def count_matrix(
    adata: AnnData, layer: str | None, *, query: bool = False
) -> np.ndarray | sp.spmatrix | sp.sparray:
    """Return ``adata.X`` or ``adata.layers[layer]``, with a clear error if it is missing
    (for a ``query``, one given to a model whose registration fixed ``layer``)."""
    if query and (adata.X is None if layer is None else layer not in adata.layers):
        where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
        raise KeyError(
            f"The model reads the raw counts from {where}, which this AnnData lacks "
            f"(layers: {list(adata.layers)}): put the raw counts there."
        )
    if layer is None:
        if adata.X is None:
            raise KeyError(
                "adata.X is empty: pass the layer that holds the raw counts, e.g. layer='counts'."
            )
        return adata.X
    if layer not in adata.layers:
        raw = (
            " adata.raw is not a layer: copy its counts into one, adata.layers['counts'] = "
            "adata.raw[:, adata.var_names].X, then pass layer='counts'."
            if layer == "raw" and adata.raw is not None
            else ""
        )
        raise KeyError(
            f"Layer {layer!r} is not in adata.layers (available: {list(adata.layers)}); "
            "pass the name of the layer that holds the raw counts, or layer=None for "
            f"adata.X.{raw}"
        )
    return adata.layers[layer]


#: Ensembl gene identifiers (ENSG..., ENSMUSG..., ...) and 10x-style cell barcodes.
_GENE_ID = r"ENS[A-Z]*G\d{6,}(\.\d+)?"
_BARCODE = r"(.*[_:-])?[ACGTN]{8,}(-\d+)?"


def _warn_if_transposed(adata: AnnData, n_names: int = 100) -> None:
    """Warn when the cells' names look like genes' (Ensembl identifiers) or the genes' like
    cell barcodes: the matrix is most likely genes x cells."""
    obs = pd.Index(adata.obs_names[:n_names]).astype(str)  # names may be integers
    var = pd.Index(adata.var_names[:n_names]).astype(str)
    if obs.str.fullmatch(_GENE_ID).mean() > 0.5 or var.str.fullmatch(_BARCODE).mean() > 0.5:
        warn(
            f"The AnnData's cells are named like genes or its genes like cell barcodes (cells "
            f"{list(obs[:2])}, genes {list(var[:2])}): scvae reads cells x genes. If it holds "
            "genes x cells, transpose it first: adata = adata.T.copy()."
        )


def row_totals(matrix) -> np.ndarray:
    """Every row's total of a count matrix, in memory or backed (read in chunks of
    :data:`CHUNK_ROWS` rows, never whole), as float64."""
    totals = [np.asarray(chunk.sum(axis=1, dtype=np.float64)) for _, chunk in _row_chunks(matrix)]
    return np.concatenate(totals, axis=None) if totals else np.zeros(0)


def _row_chunks(matrix) -> Iterator[tuple[int, np.ndarray | sp.spmatrix]]:
    for start in range(0, matrix.shape[0], CHUNK_ROWS):
        yield start, matrix[start : start + CHUNK_ROWS]


def _values(chunk) -> np.ndarray:
    """The stored values of a chunk: non-zeros of a sparse matrix, everything of a dense one."""
    if sp.issparse(chunk):
        return np.asarray(chunk.data)
    return np.asarray(chunk).ravel()


def _fix_hint(adata: AnnData, layer: str | None, where: str, query: bool) -> str:
    """What to do when the counts in ``where`` are not raw counts: where the raw counts may
    be in this AnnData (a layer it has, ``adata.raw``), or for a ``query`` where the model
    reads them."""
    if query:
        return f"Put the raw counts in {where}, where the model reads them."
    if adata.raw is not None and layer is None:
        return (
            "If adata.raw holds the raw counts, copy them into a layer and pass it: "
            "adata.layers['counts'] = adata.raw[:, adata.var_names].X, then layer='counts'."
        )
    if layer is None and adata.layers:
        return (
            f"Pass the layer with the raw counts, one of {list(adata.layers)}: "
            f"layer={next(iter(adata.layers))!r}."
        )
    if layer is None:
        return (
            "adata has no layers: put the raw counts in adata.X, or in a layer "
            "(adata.layers['counts'] = ...) and pass layer='counts'."
        )
    return f"Pass the layer with the raw counts instead of {layer!r}."


def validate_counts(
    adata: AnnData,
    *,
    layer: str | None = None,
    allow_non_integer: bool = False,
    query: bool = False,
) -> None:
    """Check that ``adata``'s count matrix holds raw counts usable by every scvae likelihood.

    Parameters
    ----------
    adata
        The AnnData to check; it is only read.
    layer
        Layer holding the counts, ``None`` for ``adata.X``.
    allow_non_integer
        Accept non-negative non-integer values (e.g. ambient-corrected counts).
    query
        ``adata`` is given to a model whose registration fixed ``layer`` and
        ``allow_non_integer``: the messages then say to put the raw counts where the model
        reads them, not to register another layer.

    Raises
    ------
    InvalidCountsError
        Empty data; a non-numeric dtype; negative, NaN or infinite values; non-integer values
        (unless allowed); a count above 2^24 (16,777,216); or cells whose total count is zero.
    KeyError
        The layer does not exist.
    """
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    fix = _fix_hint(adata, layer, where, query)
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InvalidCountsError(
            f"The AnnData is empty ({adata.n_obs} cells x {adata.n_vars} genes): "
            "there is nothing to model."
        )
    matrix = count_matrix(adata, layer, query=query)
    if adata.isbacked and getattr(matrix, "format", None) == "csc":
        warn(
            f"{where} is a CSC matrix in a backed file: every read of a few rows reads all of "
            "it (at setup, and for every minibatch buffer), so the file is read whole over "
            "and over. Store it as CSR: adata = adata.to_memory(); adata.X = adata.X.tocsr(); "
            "adata.write_h5ad(path), then open it backed again."
        )
    elif sp.issparse(matrix) and matrix.format != "csr":
        warn(
            f"{where} is a {matrix.format.upper()} matrix: minibatches are rows of cells, "
            f"which CSR stores together; training is faster after {where} = {where}.tocsr()."
        )
    _warn_if_transposed(adata)
    dtype = np.dtype(matrix.dtype)
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InvalidCountsError(
            f"{where} has dtype {dtype}, not a number type: store the raw counts as integers "
            "or floats."
        )
    n_empty_cells = 0
    for start, chunk in _row_chunks(matrix):
        values = _values(chunk)
        if np.issubdtype(dtype, np.floating):
            bad = ~np.isfinite(values)
            if bad.any():
                raise InvalidCountsError(
                    f"{where} contains NaN or infinite values ({int(bad.sum())} in rows "
                    f"{start}-{start + chunk.shape[0] - 1}): raw counts are finite. {fix}"
                )
            if not allow_non_integer:
                fractional = values != np.round(values)
                if fractional.any():
                    example = values[fractional][0]
                    allow = (
                        ""
                        if query
                        else " Or pass allow_non_integer=True for deliberately non-integer "
                        "counts such as ambient-corrected data."
                    )
                    raise InvalidCountsError(
                        f"{where} holds non-integer values (e.g. {example!s}), so it looks "
                        f"normalised or log-transformed, not raw counts. {fix}{allow}"
                    )
        negative = values < 0
        if negative.any():
            raise InvalidCountsError(
                f"{where} has negative values (e.g. {values[negative][0]!s}): counts cannot be "
                f"negative; it looks scaled or centred. {fix}"
            )
        if values.size and float(values.max()) > MAX_COUNT:  # float16 cannot hold 2**24
            raise InvalidCountsError(
                f"{where} has a count of {float(values.max()):.3g}, above {MAX_COUNT:,}: "
                "float32, in which the models compute, no longer holds such counts exactly, "
                f"and one cell does not hold so many molecules of a gene. {fix}"
            )
        totals = np.asarray(chunk.sum(axis=1)).ravel()
        n_empty_cells += int((totals == 0).sum())
    if n_empty_cells:
        raise InvalidCountsError(
            f"{n_empty_cells} of {adata.n_obs} cells have a total count of zero in {where}; "
            "they carry no information and break the library-size scaling. Remove them first, "
            "e.g. scanpy.pp.filter_cells(adata, min_counts=1)."
        )


def check_setup(
    adata: AnnData,
    layer: str | None,
    batch_key: str | None,
    labels_key: str | None,
    allow_non_integer: bool,
) -> None:
    """The checks of a setup before anything is registered: the batch and label columns
    exist and sort, every cell has a batch (cells without a label are allowed), the counts
    are raw counts (:func:`validate_counts`); warns of batches of fewer than 3 cells and of
    repeated gene or cell names."""
    check_flag(allow_non_integer, "allow_non_integer")
    for key, name in ((batch_key, "batch_key"), (labels_key, "labels_key")):
        check_obs_key(adata, key, name)
    check_obs_complete(adata, batch_key, "batch_key")
    for key, name in ((batch_key, "batch_key"), (labels_key, "labels_key")):
        check_obs_sortable(adata, key, name)
    validate_counts(adata, layer=layer, allow_non_integer=allow_non_integer)
    warn_small_batches(adata, batch_key)
    warn_repeated_names(adata)
