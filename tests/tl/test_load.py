"""scvae.tl.load_model and scvae.tl.saved_genes."""

import numpy as np
import pytest

import scvae
from scvae.tl import load_model


def test_load_model_without_the_saved_anndata_says_to_pass_one(trained, tmp_path):
    model, adata = trained
    model.save(tmp_path / "model", save_anndata=False)
    with pytest.raises(ValueError, match=r"saved without its AnnData.*adata="):
        load_model(tmp_path / "model")
    assert load_model(tmp_path / "model", adata).n_clusters == 3


def test_load_model_uses_the_anndata_saved_with_the_model(trained, tmp_path):
    model, adata = trained
    model.save(tmp_path / "model", save_anndata=True)
    loaded = load_model(tmp_path / "model")
    assert isinstance(loaded, scvae.GMVAE) and loaded.adata.n_obs == adata.n_obs


def test_load_model_reads_a_model_saved_with_a_prefix(trained, tmp_path):
    model, adata = trained
    model.save(tmp_path / "model", prefix="run1_", save_anndata=False)
    loaded = load_model(tmp_path / "model", adata, prefix="run1_")
    assert isinstance(loaded, scvae.GMVAE)
    np.testing.assert_array_equal(loaded.predict(adata), model.predict(adata))
    with pytest.raises(ValueError, match="No saved model"):
        load_model(tmp_path / "model", adata)  # no prefix: no such file


def test_saved_genes_are_the_models_in_its_order(trained, tmp_path):
    model, adata = trained
    model.save(tmp_path / "model", prefix="run1_")
    genes = scvae.tl.saved_genes(tmp_path / "model", prefix="run1_")
    assert list(genes) == list(adata.var_names)
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        scvae.tl.saved_genes(tmp_path / "other")
    with pytest.raises(ValueError, match="No saved model"):
        scvae.tl.saved_genes(tmp_path / "model")
