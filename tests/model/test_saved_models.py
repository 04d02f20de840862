"""Models saved by an earlier release load and answer exactly as they did when saved."""

from pathlib import Path

import numpy as np
import pytest

import scvae
from scvae.datasets import synthetic_counts
from scvae.module import ComponentGMVAEModule

SAVED = Path(__file__).parent / "saved_models"


def _adata():
    return synthetic_counts(n_cells=120, n_genes=40, n_clusters=3, seed=0)


@pytest.mark.parametrize("name, model_cls", [("vae", scvae.VAE), ("gmvae", scvae.GMVAE)])
def test_a_model_saved_by_scvae_0_1_0_loads_with_the_same_results(name, model_cls):
    adata = _adata()
    model = model_cls.load(SAVED / name, adata=adata)
    np.testing.assert_allclose(
        model.get_latent_representation(),
        np.load(SAVED / name / "latent.npy"),
        rtol=1e-5,
        atol=1e-6,
    )
    if name == "gmvae":
        assert model.inference == "per_component"
        assert isinstance(model.module, ComponentGMVAEModule)
        np.testing.assert_allclose(
            model.predict(soft=True).to_numpy(),
            np.load(SAVED / name / "probabilities.npy"),
            rtol=1e-5,
            atol=1e-6,
        )


def test_loading_an_old_gmvae_leaves_its_directory_untouched(tmp_path):
    before = {path.name: path.read_bytes() for path in (SAVED / "gmvae").iterdir()}
    scvae.GMVAE.load(SAVED / "gmvae", adata=_adata())
    after = {path.name: path.read_bytes() for path in (SAVED / "gmvae").iterdir()}
    assert after == before
