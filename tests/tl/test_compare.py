"""scvae.tl.compare_models and its evaluation helpers."""

import numpy as np
import pandas as pd
import pytest

import scvae
from scvae.datasets import synthetic_counts
from scvae.tl._workflow import heldout_split, unregistered_copy


@pytest.fixture
def tiny():
    return synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)


def test_compare_models_table_and_leaves_adata_alone(tiny):
    scvae.setup_anndata(tiny, layer="counts")
    before = tiny.copy()
    manager = scvae.VAE._setup_adata_manager_store[tiny.uns["_scvi_uuid"]]
    table = scvae.tl.compare_models(
        tiny,
        likelihoods=("poisson", "nb"),
        n_clusters=(None, 3),
        labels_key="cell_type",
        max_epochs=2,
        n_mc_samples=5,
        layer="counts",
        n_hidden=16,
    )
    assert list(table.columns) == [
        "model",
        "likelihood",
        "n_clusters",
        "heldout_elbo",
        "heldout_log_likelihood",
        "ari",
        "nmi",
    ]
    assert list(table["model"]) == ["VAE", "VAE", "GMVAE", "GMVAE"]
    assert list(table["likelihood"]) == ["poisson", "nb", "poisson", "nb"]
    assert table["n_clusters"].isna().tolist() == [True, True, False, False]
    assert np.isfinite(table[["heldout_elbo", "heldout_log_likelihood"]].to_numpy()).all()
    assert (table["heldout_log_likelihood"] < 0).all()
    gmvae = table["model"] == "GMVAE"
    assert table.loc[gmvae, ["ari", "nmi"]].notna().all().all()
    assert table.loc[~gmvae, ["ari", "nmi"]].isna().all().all()
    # The user's AnnData and its registration are untouched.
    assert list(tiny.obs.columns) == list(before.obs.columns)
    assert set(tiny.obsm) == set(before.obsm) and set(tiny.uns) == set(before.uns)
    assert tiny.uns["_scvi_uuid"] == before.uns["_scvi_uuid"]
    assert (tiny.X != before.X).nnz == 0
    assert scvae.VAE._setup_adata_manager_store[tiny.uns["_scvi_uuid"]] is manager


def test_compare_models_rejects_unknown_labels(tiny):
    with pytest.raises(KeyError, match="nope"):
        scvae.tl.compare_models(tiny, labels_key="nope")


def test_heldout_split_is_a_partition():
    train, heldout = heldout_split(50, 0.1, seed=3)
    assert len(heldout) == 5 and len(train) == 45
    assert np.array_equal(np.sort(np.concatenate([train, heldout])), np.arange(50))
    assert np.array_equal(heldout, heldout_split(50, 0.1, seed=3)[1])
    with pytest.raises(ValueError, match="heldout_fraction"):
        heldout_split(50, 1.0, seed=0)


def test_unregistered_copy_drops_scvi_entries(tiny):
    scvae.setup_anndata(tiny)
    copy = unregistered_copy(tiny, [0, 1, 2])
    assert copy.n_obs == 3
    assert not [k for k in copy.uns if k.startswith("_scvi")]
    assert not [c for c in copy.obs if c.startswith("_scvi")]
    assert "_scvi_uuid" in tiny.uns and isinstance(tiny.obs, pd.DataFrame)
