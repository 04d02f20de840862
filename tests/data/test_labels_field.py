"""Labels are never used to embed cells: a query may lack them, or hold new ones."""

import numpy as np
import pytest

import scvae
from scvae.datasets import synthetic_counts
from tests.helpers import QUIET


@pytest.fixture(scope="module")
def model():
    adata = synthetic_counts(n_cells=120, n_genes=20, n_clusters=3, n_batches=2, seed=0)
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
