"""The batch and labels columns: batches without cells are not registered; labels are never
used to embed cells, so a query may lack them or hold new ones."""

import numpy as np
import pandas as pd
import pytest

import scvae
from scvae.datasets import synthetic_counts
from tests.helpers import QUIET


@pytest.fixture(scope="module", params=["text", "integers"])
def model(request):
    adata = synthetic_counts(n_cells=120, n_genes=20, n_clusters=3, n_batches=2, seed=0)
    if request.param == "integers":  # labels as codes: a query's new labels are text
        adata.obs["cell_type"] = adata.obs["cell_type"].cat.codes.astype(int)
    scvae.setup_anndata(adata, batch_key="batch", labels_key="cell_type")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=3, n_hidden=8)
    model.train(max_epochs=2, **QUIET)
    return model


def _new_labels(query):
    query.obs["cell_type"] = "a type the model never saw"


def _no_labels(query):
    del query.obs["cell_type"]


def _some_labels_missing(query):
    labelled = np.arange(query.n_obs) % 2 == 0
    query.obs["cell_type"] = query.obs["cell_type"].astype(object).where(labelled, np.nan)


@pytest.mark.parametrize("change", [_new_labels, _no_labels, _some_labels_missing])
def test_a_query_embeds_the_same_whatever_its_labels(model, change):
    query = model.adata[:30].copy()
    expected = model.get_latent_representation(query)
    query = model.adata[:30].copy()
    del query.uns["_scvi_uuid"]  # a new AnnData, as read from a file
    change(query)
    labels_before = query.obs.get("cell_type")
    np.testing.assert_allclose(model.get_latent_representation(query), expected, atol=1e-5)
    model.annotate(query)
    assert query.obs["scvae_cluster"].notna().all()
    if labels_before is None:
        assert "cell_type" not in query.obs  # no labels column is made up
    else:
        assert query.obs["cell_type"].equals(labels_before)


def test_batches_without_cells_are_not_registered():
    adata = synthetic_counts(n_cells=90, n_genes=20, n_batches=3, seed=0)
    adata.obs["batch"] = pd.Categorical(adata.obs["batch"])
    two = adata[adata.obs["batch"] != "batch_1"].copy()
    # A column with a category of no cell (as read from a file written before a subset).
    categories = ["batch_0", "batch_1", "batch_2"]
    two.obs["batch"] = pd.Categorical(two.obs["batch"], categories=categories)
    scvae.setup_anndata(two, batch_key="batch")
    model = scvae.VAE(two, n_latent=2, n_hidden=8)
    assert model.summary_stats.n_batch == 2
    model.train(max_epochs=1, **QUIET)
    query = adata[adata.obs["batch"] == "batch_1"].copy()
    with pytest.raises(ValueError, match=r"not trained on: \['batch_1'\]"):
        model.get_latent_representation(query)
    latent = model.get_latent_representation(two[two.obs["batch"] == "batch_2"].copy())
    assert np.isfinite(latent).all()


def test_a_batch_column_changed_after_setup_keeps_its_codes_or_is_refused():
    adata = synthetic_counts(n_cells=120, n_genes=20, n_clusters=2, n_batches=2, seed=0)
    scvae.setup_anndata(adata, batch_key="batch")
    gmvae = scvae.GMVAE(adata, n_clusters=2, n_latent=2, n_hidden=8)
    gmvae.train(max_epochs=2, **QUIET)
    vae = scvae.VAE(adata, n_latent=2, n_hidden=8)
    vae.train(max_epochs=2, **QUIET)
    latent = gmvae.get_latent_representation()
    batches = list(adata.obs["batch"].cat.categories)
    # Each model's query registers the AnnData again after the other's: the cells keep the
    # codes the models trained with, by name, through a reordering (for a plot) and a cast.
    for change in (lambda c: c.cat.reorder_categories(batches[::-1]), lambda c: c.astype(str)):
        vae.get_latent_representation()
        adata.obs["batch"] = change(adata.obs["batch"])
        np.testing.assert_array_equal(gmvae.get_latent_representation(), latent)
    vae.get_latent_representation()
    adata.obs["batch"] = adata.obs["batch"].replace({"batch_1": "batch_9"})
    for _ in range(2):  # refused before it is registered again, and so again
        with pytest.raises(ValueError, match=r"not trained on: \['batch_9'\]"):
            gmvae.get_latent_representation()
    adata.obs["batch"] = adata.obs["batch"].replace({"batch_9": "batch_1"})
    np.testing.assert_array_equal(gmvae.get_latent_representation(), latent)


def test_a_batch_field_registered_again_refuses_batches_it_did_not_register():
    adata = synthetic_counts(n_cells=30, n_genes=10, n_batches=2, seed=0)
    field = scvae.data.BatchField("batch", "batch")
    state = field.register_field(adata)
    adata.obs["batch"] = adata.obs["batch"].cat.rename_categories({"batch_0": "x"})
    with pytest.raises(ValueError, match=r"not registered, \['x'\] \(registered: \['batch_0'"):
        field.register_field(adata)
    adata.obs["batch"] = adata.obs["batch"].cat.rename_categories({"x": "batch_0"})
    adata.obs["batch"] = adata.obs["batch"].cat.reorder_categories(["batch_1", "batch_0"])
    again = field.register_field(adata)
    assert list(again["categorical_mapping"]) == list(state["categorical_mapping"])
    codes = adata.obs["_scvi_batch"].to_numpy()
    np.testing.assert_array_equal(codes, (adata.obs["batch"] == "batch_1").to_numpy())


def test_a_loaded_model_takes_a_query_with_some_of_its_batches_in_any_order(tmp_path):
    adata = synthetic_counts(n_cells=150, n_genes=20, n_clusters=2, n_batches=3, seed=0)
    scvae.setup_anndata(adata, batch_key="batch")
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    model.train(max_epochs=2, **QUIET)
    model.save(tmp_path / "model")
    query = adata[adata.obs["batch"] != "batch_1"].copy()
    query.obs["batch"] = query.obs["batch"].cat.reorder_categories(["batch_2", "batch_0"])
    expected = model.get_latent_representation(query)
    loaded = scvae.VAE.load(tmp_path / "model", adata=query)
    np.testing.assert_allclose(loaded.get_latent_representation(), expected, rtol=1e-5)
