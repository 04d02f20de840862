"""Registration refuses what is not raw counts, and leaves the AnnData untouched when it does."""

import re
import warnings
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scvae
from scvae.data import InvalidCountsError
from scvae.datasets import synthetic_counts
from scvae.model import ScvaeModel
from scvae.model._setup import _model_classes
from tests.helpers import QUIET


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


def _warnings_of(function, *args, **kwargs) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        function(*args, **kwargs)
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("layout", ["dense", "csr", "csc"])
def test_dense_csr_and_csc_counts_are_accepted(adata, layout):
    """A CSC matrix is said once, at setup, with the conversion (scvi-tools said it twice
    there and again at every training and query)."""
    convert = {"dense": lambda m: m.toarray(), "csr": sp.csr_matrix, "csc": sp.csc_matrix}
    adata.X = convert[layout](adata.layers["counts"])
    said = _warnings_of(scvae.setup_anndata, adata)
    conversion = "adata.X = adata.X.tocsr()"
    assert [m for m in said if conversion in m] == ([] if layout != "csc" else said)
    assert len(said) == (layout == "csc")
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    assert _warnings_of(model.train, max_epochs=1, enable_progress_bar=False) == []
    assert _warnings_of(model.get_latent_representation) == []


def test_batches_of_one_or_two_cells_are_said_once_in_the_users_terms(adata):
    adata.obs["cell_id"] = adata.obs_names
    said = _warnings_of(scvae.setup_anndata, adata, batch_key="cell_id")
    assert len(said) == 1
    assert said[0].startswith("batch_key='cell_id': 300 of its 300 batches have fewer than 3")
    assert "is it the right column?" in said[0] and "_scvi_batch" not in said[0]
    assert _warnings_of(scvae.setup_anndata, adata, batch_key="batch") == []


@pytest.mark.parametrize("names", ["gene_ids", "barcodes"])
def test_a_transposed_matrix_is_pointed_out(adata, names):
    """Genes x cells trains without error on genes as if they were cells."""
    genes_by_cells = adata.T.copy()
    genes_by_cells.X = sp.csr_matrix(genes_by_cells.X)
    if names == "gene_ids":
        genes_by_cells.obs_names = [f"ENSG{i:011d}" for i in range(genes_by_cells.n_obs)]
    else:
        genes_by_cells.var_names = [
            f"{i:08b}".replace("0", "A").replace("1", "C") + "-1"
            for i in range(genes_by_cells.n_vars)
        ]
    said = _warnings_of(scvae.setup_anndata, genes_by_cells)
    assert len(said) == 1 and "adata = adata.T.copy()" in said[0]
    assert _warnings_of(scvae.setup_anndata, adata) == []


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
@pytest.mark.parametrize("setup", [scvae.setup_anndata, scvae.GMVAE.setup_anndata])
def test_missing_layer_or_column_is_named(adata, kwargs, message, setup):
    """Also by a model class's own setup (scvi-tools' way), which runs the same checks."""
    snapshot = _snapshot(adata)
    with pytest.raises(KeyError, match=message):
        setup(adata, **kwargs)
    _assert_unchanged(adata, snapshot)


def test_a_model_on_an_anndata_not_set_up_names_scvaes_setup(adata):
    with pytest.raises(ValueError, match=r"not been set up for scvae.*scvae\.setup_anndata"):
        scvae.VAE(adata)


def test_a_model_on_a_copy_or_a_view_of_a_set_up_anndata_says_how_to_set_it_up(adata):
    scvae.setup_anndata(adata)
    with pytest.raises(ValueError, match=r"a copy of one set up for scvae.*setup_anndata"):
        scvae.VAE(adata[:100].copy())
    with pytest.raises(ValueError, match=r"a view of one .*adata\[cells\]\.copy\(\)"):
        scvae.GMVAE(adata[:100])


def test_a_flag_given_as_a_string_is_refused(adata):
    """``"False"`` is a true value: taken as it is, it would do the opposite."""
    with pytest.raises(TypeError, match="allow_non_integer must be True or False"):
        scvae.setup_anndata(adata, allow_non_integer="False")
    for flag in (None, 0, np.bool_(False)):  # unambiguous
        scvae.setup_anndata(adata, allow_non_integer=flag)


def test_cells_without_a_batch_are_counted_and_named(adata):
    adata.obs["batch"] = adata.obs["batch"].astype(object)
    adata.obs.iloc[[3, 7], adata.obs.columns.get_loc("batch")] = np.nan
    snapshot = _snapshot(adata)
    with pytest.raises(ValueError, match=r"batch_key='batch': 2 of 300 cells have no value"):
        scvae.setup_anndata(adata, batch_key="batch")
    _assert_unchanged(adata, snapshot)


@pytest.mark.parametrize("labels", [["b", "a", "c"], [2, 0, 1]])
def test_cells_without_a_label_are_registered_as_unlabelled(adata, labels):
    adata.obs["label"] = np.tile(np.asarray(labels, dtype=object), 100)
    adata.obs.iloc[[3, 7], adata.obs.columns.get_loc("label")] = np.nan  # partly annotated
    scvae.setup_anndata(adata, labels_key="label")
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    mapping = model.adata_manager.get_state_registry("labels").categorical_mapping
    assert list(mapping) == [*sorted(map(str, labels)), "unlabelled"]
    codes = adata.obs["_scvi_labels"].to_numpy()
    assert list(mapping[codes[[0, 3]]]) == [str(labels[0]), "unlabelled"]


def test_an_empty_anndata_is_refused(adata):
    with pytest.raises(InvalidCountsError, match="empty"):
        scvae.setup_anndata(adata[:0].copy())


@pytest.mark.parametrize("key", ["batch_key", "labels_key"])
def test_a_column_mixing_integers_and_strings_is_named_with_the_conversion(adata, key):
    adata.obs["batch"] = np.array([1 if i % 2 else "x" for i in range(adata.n_obs)], dtype=object)
    snapshot = _snapshot(adata)
    with pytest.raises(ValueError, match=r"mixes values of types \['int', 'str'\].*map\(str"):
        scvae.setup_anndata(adata, **{key: "batch"})
    _assert_unchanged(adata, snapshot)
    adata.obs["batch"] = pd.Categorical(np.tile(["a", "b"], 150), categories=["a", "b", 1])
    with pytest.raises(ValueError, match=r"mixes values of types \['int', 'str'\]"):
        scvae.setup_anndata(adata, **{key: "batch"})  # scvi-tools sorts the categories


def test_a_failed_registration_leaves_a_trained_models_registration_as_it_was():
    adata = synthetic_counts(n_cells=120, n_genes=20, n_batches=2, batch_effect=1.0, seed=0)
    scvae.setup_anndata(adata, batch_key="batch")
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, enable_progress_bar=False)
    latent, codes = model.get_latent_representation(), adata.obs["_scvi_batch"].copy()
    adata.obs["other"] = np.tile(["b", "a", "c"], 40)  # other codes than "batch"'s
    second = _model_classes(ScvaeModel)[-1]  # the other model class registered it first
    with mock.patch.object(second, "register_manager", side_effect=RuntimeError("failed")):
        with pytest.raises(RuntimeError, match="failed"):
            scvae.setup_anndata(adata, batch_key="other")
    assert adata.obs["_scvi_batch"].equals(codes)
    np.testing.assert_array_equal(model.get_latent_representation(), latent)


def test_a_view_is_refused_and_its_original_keeps_its_registration(adata, tmp_path):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    model.save(tmp_path / "model")
    for register in (
        lambda: scvae.setup_anndata(adata[:100]),
        lambda: scvae.VAE.load(tmp_path / "model", adata=adata[:100]),
    ):
        with pytest.raises(ValueError, match=r"is a view .*adata\[mask\].copy\(\)"):
            register()
    assert scvae.VAE(adata, n_latent=2, n_hidden=8).adata is adata


def test_registering_a_copy_leaves_the_original_registered(adata):
    scvae.setup_anndata(adata)
    subset = adata[:100].copy()  # keeps the original's registration identity
    scvae.setup_anndata(subset)
    assert subset.uns["_scvi_uuid"] != adata.uns["_scvi_uuid"]
    for data in (adata, subset):
        assert scvae.VAE(data, n_latent=2, n_hidden=8).adata is data


def test_counts_kept_in_raw_get_the_advice_that_works(adata):
    adata.raw = adata
    adata.X = adata.X / 2.5  # normalised, the raw counts only in adata.raw
    with pytest.raises(InvalidCountsError, match=r"adata.raw\[:, adata.var_names\].X"):
        scvae.setup_anndata(adata)
    with pytest.raises(KeyError, match=r"adata.raw is not a layer.*adata.raw\[:, adata.var"):
        scvae.setup_anndata(adata, layer="raw")
    adata.layers["counts"] = adata.raw[:, adata.var_names].X
    scvae.setup_anndata(adata, layer="counts")


def test_a_model_on_a_copy_that_was_not_set_up_says_to_set_it_up(adata):
    scvae.setup_anndata(adata)
    copy = adata.copy()
    with pytest.raises(ValueError, match=r"run scvae\.setup_anndata on it"):
        scvae.GMVAE(copy)
    scvae.setup_anndata(copy)
    assert scvae.GMVAE(copy, n_latent=2, n_hidden=8).adata is copy


def test_normalised_counts_in_x_name_the_layers_there_are(adata):
    adata.X = adata.X / 2.5
    with pytest.raises(InvalidCountsError, match=r"one of \['counts'\]: layer='counts'\."):
        scvae.setup_anndata(adata)
    del adata.layers["counts"]
    with pytest.raises(InvalidCountsError, match="adata has no layers: put the raw counts in"):
        scvae.setup_anndata(adata)


def test_integer_cell_and_gene_names_are_set_up(adata):
    adata.obs_names = pd.Index(np.arange(adata.n_obs))
    adata.var_names = pd.Index(np.arange(adata.n_vars))
    assert _warnings_of(scvae.setup_anndata, adata) == []


def test_setup_warnings_are_said_once_on_every_path(adata, tmp_path):
    """A class's own setup, a load onto a CSC AnnData and rare labels: scvae's message once,
    none of scvi-tools' own (which named its _scvi_ columns and repeated itself)."""
    adata.obs["cell_id"] = adata.obs_names
    said = _warnings_of(scvae.VAE.setup_anndata, adata, batch_key="cell_id")
    assert len(said) == 1 and said[0].startswith("batch_key='cell_id'")
    adata.obs["rare"] = ["a"] * (adata.n_obs - 1) + ["b"]
    assert _warnings_of(scvae.setup_anndata, adata, labels_key="rare") == []
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, enable_progress_bar=False)
    model.save(tmp_path / "model")
    csc = adata.copy()
    csc.X = sp.csc_matrix(csc.X)
    said = _warnings_of(scvae.VAE.load, tmp_path / "model", adata=csc)
    assert len(said) == 1 and "adata.X = adata.X.tocsr()" in said[0]


@pytest.mark.parametrize(("axis", "fix"), [("var", "var_names_make_unique"), ("obs", "obs_names")])
def test_repeated_gene_or_cell_names_are_pointed_out(adata, axis, fix):
    names = list(getattr(adata, f"{axis}_names"))
    names[1] = names[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's own warning
        setattr(adata, f"{axis}_names", names)
    pattern = rf"1 (gene|cell) names repeat .*adata\.{fix}"
    with pytest.warns(UserWarning, match=pattern) as said:
        scvae.setup_anndata(adata)
    with pytest.warns(UserWarning, match=pattern) as said_by_fit:
        scvae.tl.fit_model(adata.copy(), train_kwargs={"max_epochs": 1, **QUIET})
    for warning in [*said, *said_by_fit]:  # the user's line, not scvae's
        if re.search(pattern, str(warning.message)):
            assert warning.filename == __file__
