"""Unsupported dtypes and backed (on-disk) AnnData: refused or registered as in memory."""

from unittest import mock

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import scvae
from scvae.data import InvalidCountsError, _validation
from scvae.datasets import synthetic_counts
from tests.helpers import QUIET

N_CELLS, N_GENES = 30, 8


def _counts(seed=0) -> sp.csr_matrix:
    """Raw counts (CSR float32) with a positive total in every cell."""
    return synthetic_counts(n_cells=N_CELLS, n_genes=N_GENES, n_clusters=2, seed=seed).X


def _keys(adata) -> dict[str, set]:
    names = ("obs", "var", "obsm", "uns", "layers")
    return {name: set(getattr(adata, name).keys()) for name in names}


def _first_line(error: pytest.ExceptionInfo) -> str:
    return str(error.value.args[0]).splitlines()[0]


# Unsupported dtypes ---------------------------------------------------------------------------

UNSUPPORTED = {
    "bool": (lambda m: m.toarray() > 0, "bool"),
    "bool-csr": (lambda m: sp.csr_matrix(m.toarray() > 0), "bool"),
    "object": (lambda m: m.toarray().astype(int).astype(object), "object"),
    "string": (lambda m: m.toarray().astype(int).astype(str), "<U21"),
    "complex64": (lambda m: m.toarray().astype(np.complex64), "complex64"),
    "complex128": (lambda m: m.toarray().astype(np.complex128), "complex128"),
}


@pytest.mark.parametrize("kind", list(UNSUPPORTED))
def test_an_unsupported_dtype_is_refused_naming_it(kind):
    convert, dtype = UNSUPPORTED[kind]
    adata = ad.AnnData(convert(_counts()))
    before = _keys(adata)
    with pytest.raises(InvalidCountsError) as error:
        scvae.setup_anndata(adata)
    assert _first_line(error).startswith(f"adata.X has dtype {dtype}, not a number type")
    assert _keys(adata) == before
    assert adata.X.dtype == np.dtype(dtype)


@pytest.mark.filterwarnings("error")
def test_half_precision_counts_register_without_a_warning():
    adata = ad.AnnData(_counts().toarray().astype(np.float16))  # 2**24 overflowed float16
    scvae.setup_anndata(adata)


def test_an_unsupported_dtype_in_a_layer_names_the_layer():
    adata = ad.AnnData(_counts())
    adata.layers["counts"] = adata.X.toarray() > 0
    with pytest.raises(InvalidCountsError) as error:
        scvae.setup_anndata(adata, layer="counts")
    assert _first_line(error).startswith("adata.layers['counts'] has dtype bool")


@pytest.fixture(scope="module")
def model():
    adata = synthetic_counts(n_cells=N_CELLS, n_genes=N_GENES, n_clusters=2, seed=1)
    scvae.setup_anndata(adata)
    vae = scvae.VAE(adata, n_hidden=8, n_latent=2)
    vae.train(max_epochs=1, **QUIET)
    return vae


def _log_normalised(matrix):
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    matrix.data = np.log1p(matrix.data)
    return matrix


@pytest.mark.parametrize(
    ("convert", "message"),
    [
        (UNSUPPORTED["bool"][0], "adata.X has dtype bool"),
        (UNSUPPORTED["complex128"][0], "adata.X has dtype complex128"),
        (_log_normalised, "adata.X holds non-integer values"),
    ],
    ids=["bool", "complex128", "log-normalised"],
)
def test_a_query_that_is_not_raw_counts_is_refused_by_annotate(model, convert, message):
    query = ad.AnnData(convert(_counts(seed=2)), var=model.adata.var[[]])
    before = _keys(query)
    with pytest.raises(InvalidCountsError) as error:
        model.annotate(query)
    assert _first_line(error).startswith(message)
    assert _keys(query) == before
    # The model's registration fixed where counts are read: no advice to register again.
    assert "layer=" not in str(error.value) and "allow_non_integer" not in str(error.value)


# First lines ---------------------------------------------------------------------------------


def _negative(matrix):
    dense = matrix.toarray()
    dense[4, 2] = -3
    return dense


def _nan(matrix):
    dense = matrix.toarray()
    dense[17, 0] = np.nan
    return dense


def _infinite(matrix):
    matrix = matrix.copy()
    matrix.data[-1] = np.inf
    return matrix


def _beyond_float32(matrix):
    dense = matrix.toarray().astype(np.float64)
    dense[5, 2] = 2**24 + 2  # float32 holds it only as 2**24 + 2 or 2**24 + 4 apart
    return dense


def _empty_cells(matrix):
    dense = matrix.toarray()
    dense[[3, 11, 29]] = 0
    return dense


CORRUPTIONS = {
    "log-normalised": (_log_normalised, "adata.X holds non-integer values (e.g. "),
    "negative": (_negative, "adata.X has negative values (e.g. -3.0)"),
    "nan": (_nan, "adata.X contains NaN or infinite values (1 in rows 0-29)"),
    "infinite": (_infinite, "adata.X contains NaN or infinite values (1 in rows 0-29)"),
    "beyond-float32": (_beyond_float32, "adata.X has a count of 1.68e+07, above 16,777,216"),
    "empty-cells": (_empty_cells, f"3 of {N_CELLS} cells have a total count of zero in adata.X"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_the_first_line_of_the_error_names_the_problem(kind):
    corrupt, first_line = CORRUPTIONS[kind]
    with pytest.raises(InvalidCountsError) as error:
        scvae.setup_anndata(ad.AnnData(corrupt(_counts())))
    assert _first_line(error).startswith(first_line)


def test_the_first_line_of_a_missing_layer_error_names_the_layer():
    adata = ad.AnnData(_counts())
    with pytest.raises(KeyError) as error:
        scvae.setup_anndata(adata, layer="raw")
    assert _first_line(error).startswith("Layer 'raw' is not in adata.layers")


# Backed AnnData ------------------------------------------------------------------------------

LAYOUTS = {
    "csr": sp.csr_matrix,
    "csc": sp.csc_matrix,
    "dense": lambda m: m.toarray() if sp.issparse(m) else np.asarray(m),
}


def _backed(tmp_path, matrix, **layers) -> ad.AnnData:
    path = tmp_path / "counts.h5ad"
    ad.AnnData(matrix, layers=layers).write_h5ad(path)
    return ad.read_h5ad(path, backed="r")


@pytest.fixture
def close_backed():
    opened = []
    yield opened.append
    for adata in opened:
        adata.file.close()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_backed_anndata_with_raw_counts_is_registered(tmp_path, close_backed, layout):
    adata = _backed(tmp_path, LAYOUTS[layout](_counts()))
    close_backed(adata)
    scvae.setup_anndata(adata)
    assert adata.isbacked
    stats = scvae.VAE(adata, n_hidden=8).summary_stats
    assert (stats.n_cells, stats.n_vars) == (N_CELLS, N_GENES)


def test_a_backed_anndata_registers_its_counts_layer(tmp_path, close_backed):
    counts = _counts()
    adata = _backed(tmp_path, _log_normalised(counts), counts=counts)
    close_backed(adata)
    scvae.setup_anndata(adata, layer="counts")


@pytest.mark.parametrize("chunk_rows", [_validation.CHUNK_ROWS, 7], ids=["one-chunk", "chunks"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_backed_anndata_is_refused_with_the_in_memory_message(
    tmp_path, close_backed, kind, layout, chunk_rows
):
    matrix = LAYOUTS[layout](CORRUPTIONS[kind][0](_counts()))
    with mock.patch.object(_validation, "CHUNK_ROWS", chunk_rows):
        with pytest.raises(InvalidCountsError) as in_memory:
            scvae.setup_anndata(ad.AnnData(matrix))
        adata = _backed(tmp_path, matrix)
        close_backed(adata)
        before = _keys(adata)
        with pytest.raises(InvalidCountsError) as backed:
            scvae.setup_anndata(adata)
    assert str(backed.value) == str(in_memory.value)
    assert _keys(adata) == before


def test_a_backed_anndata_with_an_unsupported_dtype_is_refused(tmp_path, close_backed):
    adata = _backed(tmp_path, UNSUPPORTED["bool"][0](_counts()))
    close_backed(adata)
    with pytest.raises(InvalidCountsError) as error:
        scvae.setup_anndata(adata)
    assert _first_line(error).startswith("adata.X has dtype bool")


def test_a_missing_layer_of_a_backed_anndata_is_named(tmp_path, close_backed):
    adata = _backed(tmp_path, _counts(), spliced=_counts(seed=3))
    close_backed(adata)
    before = _keys(adata)
    with pytest.raises(KeyError) as error:
        scvae.setup_anndata(adata, layer="counts")
    assert _first_line(error).startswith(
        "Layer 'counts' is not in adata.layers (available: ['spliced'])"
    )
    assert _keys(adata) == before
