"""Results hand over to scanpy and to scvi-tools' differential expression as users expect."""

import numpy as np
import pytest
import scanpy as sc

import scvae
from scvae.datasets import synthetic_counts
from tests.helpers import QUIET

pytestmark = pytest.mark.slow  # neighbours, UMAP and differential expression on a trained model


def test_neighbors_umap_rank_genes_groups_and_differential_expression():
    adata = synthetic_counts(n_cells=600, n_genes=60, n_clusters=3, seed=0)
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=4, n_hidden=32)
    model.train(max_epochs=50, **QUIET)

    sc.pp.neighbors(adata, use_rep="X_scvae")
    sc.tl.umap(adata)
    assert adata.obsm["X_umap"].shape == (600, 2)

    adata.layers["log1p"] = adata.layers["counts"].copy()
    sc.pp.normalize_total(adata, layer="log1p")
    sc.pp.log1p(adata, layer="log1p")
    sc.tl.rank_genes_groups(adata, "scvae_cluster", layer="log1p", method="wilcoxon")
    groups = adata.uns["rank_genes_groups"]["names"].dtype.names
    assert set(groups) == set(adata.obs["scvae_cluster"].cat.categories)

    de = model.differential_expression(groupby="scvae_cluster", batch_size=128)
    assert {"bayes_factor", "scale1", "scale2", "comparison"} <= set(de.columns)
    assert np.isfinite(de["bayes_factor"]).all()
    assert de["comparison"].nunique() == adata.obs["scvae_cluster"].nunique()
