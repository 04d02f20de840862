"""Registration refuses what is not raw counts, and leaves the AnnData untouched when it does."""

import numpy as np
import pytest
import scipy.sparse as sp

import scvae
from scvae.data import InvalidCountsError


def _snapshot(adata):
    return (
        adata.X.copy(),
        set(adata.obs.columns),
        set(adata.obsm.keys()),
        set(adata.uns.keys()),
        set(adata.layers.keys()),
    )


def _assert_unchanged(adata, snapshot):
    x, obs, obsm, uns, layers = snapshot
    dense = (lambda m: m.toarray()) if sp.issparse(x) else np.asarray
    assert np.array_equal(dense(adata.X), dense(x), equal_nan=True)
    assert set(adata.obs.columns) == obs
    assert set(adata.obsm.keys()) == obsm
    assert set(adata.uns.keys()) == uns
    assert set(adata.layers.keys()) == layers


def test_registration_serves_every_scvae_model(adata):
    scvae.setup_anndata(adata, layer="counts", batch_key="batch", labels_key="cell_type")
    assert scvae.VAE(adata).summary_stats.n_batch == 1
    assert scvae.GMVAE(adata, n_clusters=3).summary_stats.n_vars == adata.n_vars


@pytest.mark.parametrize("layout", ["dense", "csr", "csc"])
def test_dense_csr_and_csc_counts_are_accepted(adata, layout):
    convert = {"dense": lambda m: m.toarray(), "csr": sp.csr_matrix, "csc": sp.csc_matrix}
    adata.X = convert[layout](adata.layers["counts"])
    scvae.setup_anndata(adata)


def _log_normalised(adata):
    adata.X = adata.X.copy()
    adata.X.data = np.log1p(adata.X.data)


def _negative(adata):
    adata.X = adata.X.toarray()
    adata.X[3, 4] = -2.0


def _nan(adata):
    adata.X = adata.X.toarray()
    adata.X[5, 1] = np.nan


def _empty_cells(adata):
    keep = np.ones(adata.n_obs)
    keep[[0, 7]] = 0
    adata.X = sp.csr_matrix(sp.diags(keep) @ adata.X)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_log_normalised, "non-integer"),
        (_negative, "negative"),
        (_nan, "NaN"),
        (_empty_cells, "2 of 300 cells have a total count of zero"),
    ],
)
def test_bad_counts_are_refused_before_anything_is_written(adata, corrupt, message):
    corrupt(adata)
    snapshot = _snapshot(adata)
    with pytest.raises(InvalidCountsError, match=message):
        scvae.setup_anndata(adata)
    _assert_unchanged(adata, snapshot)


def test_non_integer_counts_can_be_allowed_explicitly(adata):
    adata.X = adata.X * 0.5
    scvae.setup_anndata(adata, allow_non_integer=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": "raw"}, "Layer 'raw' is not in adata.layers"),
        ({"batch_key": "donor"}, "batch_key='donor' is not a column"),
        ({"labels_key": "type"}, "labels_key='type' is not a column"),
    ],
)
def test_missing_layer_or_column_is_named(adata, kwargs, message):
    snapshot = _snapshot(adata)
    with pytest.raises(KeyError, match=message):
        scvae.setup_anndata(adata, **kwargs)
    _assert_unchanged(adata, snapshot)


@pytest.mark.parametrize("key", ["batch_key", "labels_key"])
def test_cells_without_a_batch_or_label_are_counted_and_named(adata, key):
    adata.obs["batch"] = adata.obs["batch"].astype(object)
    adata.obs.iloc[[3, 7], adata.obs.columns.get_loc("batch")] = np.nan
    snapshot = _snapshot(adata)
    with pytest.raises(ValueError, match=rf"{key}='batch': 2 of 300 cells have no value"):
        scvae.setup_anndata(adata, **{key: "batch"})
    _assert_unchanged(adata, snapshot)


def test_an_empty_anndata_is_refused(adata):
    with pytest.raises(InvalidCountsError, match="empty"):
        scvae.setup_anndata(adata[:0].copy())
