"""Property-based checks of registration and inference over AnnData shapes, layouts and values.

Valid raw counts (any shape, dtype or layout) are registered without being touched; a single bad
entry anywhere is refused with an error naming it, and the AnnData is left as it was. A trained
model turns any valid query with its genes into a finite latent representation.
"""

import re
from unittest import mock

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import scvae
from scvae.data import InvalidCountsError, _validation
from scvae.datasets import synthetic_counts
from tests.helpers import QUIET

PROPERTY = settings(
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MAX_COUNT = 10**6
LAYOUTS = {
    "float32": lambda m: m.astype(np.float32),
    "float64": lambda m: m.astype(np.float64),
    "int32": lambda m: m.astype(np.int32),
    "int64": lambda m: m.astype(np.int64),
    "fortran": lambda m: np.asfortranarray(m.astype(np.float32)),
    "csr": lambda m: sp.csr_matrix(m.astype(np.float32)),
    "csc": lambda m: sp.csc_matrix(m.astype(np.float32)),
}
FLOAT_LAYOUTS = ["float32", "float64", "fortran", "csr", "csc"]
SIGNED_LAYOUTS = list(LAYOUTS)  # the integer layouts are signed too


@st.composite
def raw_counts(draw, n_obs=(2, 30), n_vars=(1, 20)):
    """Integer counts in [0, 1e6], mostly zeros, with a positive total in every cell."""
    shape = (draw(st.integers(*n_obs)), draw(st.integers(*n_vars)))
    values = st.one_of(st.just(0), st.integers(1, 5), st.integers(0, MAX_COUNT))
    counts = draw(hnp.arrays(np.int64, shape, elements=values, fill=st.just(0)))
    rows = np.arange(shape[0])
    cols = draw(hnp.arrays(np.int64, shape[0], elements=st.integers(0, shape[1] - 1)))
    fill = draw(hnp.arrays(np.int64, shape[0], elements=st.integers(1, MAX_COUNT)))
    empty = counts.sum(axis=1) == 0
    counts[rows[empty], cols[empty]] = fill[empty]
    return counts


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def _snapshot(adata):
    return {
        "X": _dense(adata.X).copy(),
        "dtype": adata.X.dtype,
        "type": type(adata.X),
        "keys": {
            name: set(getattr(adata, name).keys())
            for name in ("obs", "var", "obsm", "varm", "uns", "layers")
        },
    }


def _assert_x_unchanged(adata, snapshot):
    assert type(adata.X) is snapshot["type"]
    assert adata.X.dtype == snapshot["dtype"]
    np.testing.assert_array_equal(_dense(adata.X), snapshot["X"])  # NaNs at the same places


def _assert_untouched(adata, snapshot):
    _assert_x_unchanged(adata, snapshot)
    for name, keys in snapshot["keys"].items():
        assert set(getattr(adata, name).keys()) == keys, name


@PROPERTY
@given(counts=raw_counts(), layout=st.sampled_from(list(LAYOUTS)))
def test_any_valid_raw_counts_are_registered_as_they_are(counts, layout):
    adata = ad.AnnData(LAYOUTS[layout](counts))
    snapshot = _snapshot(adata)
    scvae.setup_anndata(adata)
    _assert_x_unchanged(adata, snapshot)
    stats = scvae.VAE(adata, n_hidden=8).summary_stats
    assert (stats.n_cells, stats.n_vars) == counts.shape


def _bad_value(draw, problem: str, dtype) -> float:
    if problem == "negative":
        return -float(draw(st.integers(1, MAX_COUNT)))
    if problem == "NaN":
        return np.nan
    if problem == "infinite":
        return draw(st.sampled_from([np.inf, -np.inf]))
    value = dtype.type(draw(st.integers(0, 1000)) + draw(st.floats(0.01, 0.99)))
    assert value != np.round(value)  # still fractional once stored in this dtype
    return float(value)


MESSAGES = {
    "negative": "has negative values",
    "NaN": "contains NaN or infinite values",
    "infinite": "contains NaN or infinite values",
    "fractional": "holds non-integer values",
}
#: Problems whose message shows the offending value, as ``(e.g. VALUE)``.
EXAMPLES_SHOWN = ("negative", "fractional")


@st.composite
def corrupted_counts(draw):
    """Valid counts of some layout with exactly one bad entry, and the expected message."""
    problem = draw(st.sampled_from(list(MESSAGES)))
    layout = draw(st.sampled_from(SIGNED_LAYOUTS if problem == "negative" else FLOAT_LAYOUTS))
    counts = draw(raw_counts())
    matrix = LAYOUTS[layout](counts)
    dense = _dense(matrix).copy()
    i = draw(st.integers(0, counts.shape[0] - 1))
    j = draw(st.integers(0, counts.shape[1] - 1))
    dense[i, j] = _bad_value(draw, problem, dense.dtype)
    if sp.issparse(matrix):
        dense = type(matrix)(dense)
    elif layout == "fortran":
        dense = np.asfortranarray(dense)
    return dense, MESSAGES[problem], dense[i, j] if problem in EXAMPLES_SHOWN else None


@PROPERTY
@given(case=corrupted_counts(), allow_non_integer=st.booleans())
def test_one_bad_entry_anywhere_is_refused_and_nothing_is_written(case, allow_non_integer):
    matrix, message, bad_value = case
    allow_non_integer &= message != MESSAGES["fractional"]  # allowing it only lifts that check
    adata = ad.AnnData(matrix)
    snapshot = _snapshot(adata)
    with pytest.raises(InvalidCountsError) as error:
        scvae.setup_anndata(adata, allow_non_integer=allow_non_integer)
    assert str(error.value).startswith(f"adata.X {message}")
    if bad_value is not None:  # the example shown is the bad value, not a rounding of it
        shown = re.search(r"\(e\.g\. ([^)]+)\)", str(error.value)).group(1)
        assert matrix.dtype.type(shown) == bad_value, (shown, bad_value)
    _assert_untouched(adata, snapshot)


@PROPERTY
@given(case=corrupted_counts(), data=st.data())
def test_the_verdict_does_not_depend_on_the_row_chunks(case, data):
    matrix, message, _ = case
    chunk_rows = data.draw(st.integers(1, matrix.shape[0]), label="chunk_rows")
    adata = ad.AnnData(matrix)
    with (
        mock.patch.object(_validation, "CHUNK_ROWS", chunk_rows),
        pytest.raises(InvalidCountsError, match=f"^adata.X {message}"),
    ):
        _validation.validate_counts(adata)


@PROPERTY
@given(counts=raw_counts(), layout=st.sampled_from(list(LAYOUTS)), data=st.data())
def test_empty_cells_are_counted_across_row_chunks(counts, layout, data):
    n_obs = counts.shape[0]
    empty = data.draw(st.sets(st.integers(0, n_obs - 1), min_size=1), label="empty cells")
    counts[sorted(empty)] = 0
    chunk_rows = data.draw(st.integers(1, n_obs), label="chunk_rows")
    adata = ad.AnnData(LAYOUTS[layout](counts))
    snapshot = _snapshot(adata)
    with (
        mock.patch.object(_validation, "CHUNK_ROWS", chunk_rows),
        pytest.raises(InvalidCountsError, match=f"^{len(empty)} of {n_obs} cells have a total"),
    ):
        scvae.setup_anndata(adata)
    _assert_untouched(adata, snapshot)


# Inference on queries ------------------------------------------------------------------------

N_GENES = 12
N_LATENT = 4
N_CLUSTERS = 3


@pytest.fixture(scope="module")
def reference():
    adata = synthetic_counts(n_cells=60, n_genes=N_GENES, n_clusters=N_CLUSTERS, seed=1)
    scvae.setup_anndata(adata)
    vae = scvae.VAE(adata, n_hidden=8, n_latent=N_LATENT)
    vae.train(max_epochs=1, **QUIET)
    gmvae = scvae.GMVAE(adata, n_clusters=N_CLUSTERS, n_hidden=8, n_latent=N_LATENT)
    gmvae.train(max_epochs=1, **QUIET)
    return adata.var_names, vae, gmvae


def _query(counts, layout, var_names):
    return ad.AnnData(
        LAYOUTS[layout](counts),
        obs=pd.DataFrame(index=[f"query_{i}" for i in range(counts.shape[0])]),
        var=pd.DataFrame(index=var_names),
    )


QUERIES = raw_counts(n_obs=(1, 40), n_vars=(N_GENES, N_GENES))


@PROPERTY
@given(counts=QUERIES, layout=st.sampled_from(list(LAYOUTS)))
def test_any_valid_query_gets_a_finite_latent_representation(reference, counts, layout):
    var_names, vae, gmvae = reference
    for model in (vae, gmvae):
        query = _query(counts, layout, var_names)
        snapshot = _snapshot(query)
        latent = model.get_latent_representation(query)
        assert latent.shape == (counts.shape[0], N_LATENT)
        assert np.isfinite(latent).all()
        _assert_x_unchanged(query, snapshot)


@PROPERTY
@given(counts=QUERIES, layout=st.sampled_from(list(LAYOUTS)))
def test_soft_cluster_assignments_of_a_query_are_distributions(reference, counts, layout):
    var_names, _, gmvae = reference
    query = _query(counts, layout, var_names)
    snapshot = _snapshot(query)
    probabilities = gmvae.predict(query, soft=True)
    assert probabilities.shape == (counts.shape[0], N_CLUSTERS)
    assert list(probabilities.index) == list(query.obs_names)
    values = probabilities.to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-5)
    _assert_x_unchanged(query, snapshot)
