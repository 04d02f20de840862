"""Counts changed in place after setup are refused, with the cause, before anything is written."""

import numpy as np
import pytest
import scanpy as sc

import scvae
from scvae.data import InvalidCountsError
from tests.helpers import QUIET


def _normalise(adata):
    sc.pp.normalize_total(adata)


def _log1p(adata):
    sc.pp.log1p(adata)


def _filter_genes(adata):
    sc.pp.filter_genes(adata, min_cells=290)


def _filter_cells(adata):
    sc.pp.filter_cells(adata, min_counts=int(np.median(np.asarray(adata.X.sum(1)))))


def _nan_in_first_cell(adata):
    counts = adata.X.data if hasattr(adata.X, "data") else adata.X.reshape(-1)
    counts[0] = np.nan  # the first cell is always among those the fingerprint reads


CHANGES = {
    "normalize_total": (_normalise, "look normalised or log-transformed in place"),
    "log1p": (_log1p, "look normalised or log-transformed in place"),
    "filter_genes": (_filter_genes, "genes were removed or added in place"),
    "filter_cells": (_filter_cells, "cells were removed or added in place"),
    "nan": (_nan_in_first_cell, "hold NaN or infinite values since"),
}


def _snapshot(adata):
    return set(adata.obsm), set(adata.obs.columns), set(adata.uns), set(adata.layers)


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("model_cls", [scvae.VAE, scvae.GMVAE])
def test_train_refuses_counts_changed_after_setup(adata, change, model_cls):
    scvae.setup_anndata(adata)  # adata.X, which scanpy's functions change in place
    model = model_cls(adata, n_latent=2, n_hidden=8)
    function, cause = CHANGES[change]
    function(adata)
    before = _snapshot(adata)
    with pytest.raises(ValueError, match=cause) as error:
        model.train(max_epochs=1, **QUIET)
    first_line = str(error.value).splitlines()[0]
    assert cause in first_line and "setup_anndata" in first_line
    assert _snapshot(adata) == before and not model.is_trained_


def test_the_normalisation_message_says_how_to_keep_the_raw_counts(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    sc.pp.normalize_total(adata)
    with pytest.raises(ValueError, match=r"layers\['counts'\].*layer='counts'"):
        model.train(max_epochs=1, **QUIET)


@pytest.mark.parametrize("change", ["normalize_total", "filter_genes"])
def test_queries_of_a_trained_model_refuse_changed_counts(adata, change):
    scvae.setup_anndata(adata)
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, **QUIET)
    latent = adata.obsm["X_scvae"].copy()
    CHANGES[change][0](adata)
    for query in (model.get_latent_representation, model.annotate, model.predict):
        with pytest.raises(ValueError, match=CHANGES[change][1]):
            query()
    np.testing.assert_array_equal(adata.obsm["X_scvae"], latent)


def test_counts_in_a_layer_survive_normalising_x_and_setting_up_again_works(adata):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    sc.pp.normalize_total(adata)  # X only: the registered layer is untouched
    sc.pp.log1p(adata)
    model.train(max_epochs=1, **QUIET)
    sc.pp.filter_genes(adata, min_cells=290)
    scvae.setup_anndata(adata, layer="counts")
    scvae.VAE(adata, n_latent=2, n_hidden=8).train(max_epochs=1, **QUIET)


def test_the_registered_layer_is_what_queries_check_not_x(adata):
    """A model set up on a layer reads queries' counts from that layer: a scanpy-style query
    (log-normalised X, raw counts in the layer) is accepted, bad counts in the layer are not,
    and an in-place change of the layer is reported where it happened."""
    scvae.setup_anndata(adata, layer="counts")
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, **QUIET)
    query = adata[:50].copy()
    del query.uns["_scvi_uuid"], query.uns["_scvi_manager_uuid"]  # a new AnnData
    model.annotate(query)
    assert query.obsm["X_scvae"].shape == (50, 2)
    bad = adata[:50].copy()
    bad.layers["counts"][0, 0] = np.nan
    with pytest.raises(InvalidCountsError, match=r"raw counts in adata.layers\['counts'\]"):
        model.annotate(bad)
    del bad.layers["counts"]
    with pytest.raises(KeyError, match=r"reads the raw counts from adata.layers\['counts'\]"):
        model.annotate(bad)
    _log1p_layer(adata)
    message = r"counts in adata.layers\['counts'\].*put them back in adata.layers\['counts'\]"
    with pytest.raises(ValueError, match=message):
        model.get_latent_representation()


def _log1p_layer(adata):
    sc.pp.log1p(adata, layer="counts")


def test_a_normalised_copy_of_the_registered_data_is_refused(adata):
    """A copy is a new AnnData for the model: its counts are checked, not the original's."""
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, **QUIET)
    copy = adata.copy()
    sc.pp.normalize_total(copy)
    sc.pp.log1p(copy)
    with pytest.raises(InvalidCountsError, match="non-integer"):
        model.get_latent_representation(copy)
    assert model.get_latent_representation(adata.copy()).shape == (adata.n_obs, 2)


def test_renamed_cells_are_accepted_and_renamed_genes_refused(adata):
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, **QUIET)
    latent = model.get_latent_representation()
    adata.obs_names = [f"sample1_{name}" for name in adata.obs_names]  # as before a concat
    np.testing.assert_array_equal(model.get_latent_representation(), latent)
    adata.var_names = [f"renamed_{name}" for name in adata.var_names]
    with pytest.raises(ValueError, match=r"gene names of the AnnData \(adata.var_names\) changed"):
        model.get_latent_representation()
