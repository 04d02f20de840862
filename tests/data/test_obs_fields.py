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


@pytest.mark.parametrize(
    "column",
    [
        pd.Categorical(["b", "a", "b", "c"], categories=["c", "b", "a", "unused"]),
        pd.Series(["b", "a", "b", "c"]),
        pd.Series([3, 1, 3, 2]),
    ],
    ids=["categorical", "strings", "integers"],
)
def test_the_batches_a_column_registers_are_named_in_code_order(column):
    adata = synthetic_counts(n_cells=4, n_genes=20, seed=0)
    adata.obs["batch"] = np.asarray(column) if not isinstance(column, pd.Categorical) else column
    scvae.setup_anndata(adata, batch_key="batch")
    manager = scvae.VAE(adata, n_latent=2, n_hidden=8).adata_manager
    registered = manager.get_state_registry("batch").categorical_mapping
    assert list(scvae.data.BatchField.batches_in(adata.obs["batch"])) == list(registered)


def test_a_batch_column_changed_after_setup_is_refused_naming_the_fix():
    adata = synthetic_counts(n_cells=120, n_genes=20, n_clusters=2, n_batches=2, seed=0)
    scvae.setup_anndata(adata, batch_key="batch")  # registers the VAE's setup last
    model = scvae.GMVAE(adata, n_clusters=2, n_latent=2, n_hidden=8)
    model.train(max_epochs=2, **QUIET)
    latent = model.get_latent_representation()
    batches = list(adata.obs["batch"].cat.categories)
    adata.obs["batch"] = adata.obs["batch"].cat.reorder_categories(batches[::-1])  # for a plot
    with pytest.raises(ValueError, match=r"another order .*\.cat\.set_categories\(\['batch_0'"):
        model.get_latent_representation()  # registered again, batch_1 would be code 0
    adata.obs["batch"] = adata.obs["batch"].cat.set_categories(batches)
    np.testing.assert_array_equal(model.get_latent_representation(), latent)
    adata.obs["batch"] = "batch_0"
    with pytest.raises(ValueError, match=r"holds other batches .*setup_anndata again"):
        model.train(max_epochs=1, **QUIET)
