"""A default fit prints its progress bar and nothing else a user did not ask for."""

import logging
import re

import pytest
import scvi
from lightning.pytorch.callbacks import TQDMProgressBar

import scvae
from scvae.datasets import synthetic_counts


@pytest.mark.parametrize("model_cls", [scvae.VAE, scvae.GMVAE])
def test_a_default_fit_prints_only_its_progress_bar(adata, model_cls, capfd, recwarn):
    scvae.setup_anndata(adata, layer="counts")
    kwargs = {"n_clusters": 3} if model_cls is scvae.GMVAE else {}
    model = model_cls(adata, n_latent=2, n_hidden=8, **kwargs)
    capfd.readouterr()
    model.train(max_epochs=3)
    out, err = capfd.readouterr()
    assert out == ""
    for line in filter(None, re.split(r"[\r\n]+", err)):
        assert line.startswith("Training:"), line  # tqdm's bar, redrawn in place
    assert "ELBO train=" in err and "validation=" in err
    assert not [w for w in recwarn if "LeafSpec" in str(w.message)]


@pytest.mark.parametrize("train_size", [None, 1.0])
def test_without_the_progress_bar_a_fit_prints_nothing(adata, capfd, recwarn, train_size):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    capfd.readouterr()
    model.train(max_epochs=2, enable_progress_bar=False, train_size=train_size)
    assert capfd.readouterr() == ("", "")
    assert not [str(w.message) for w in recwarn]  # none without validation cells either


@pytest.mark.parametrize("enable_progress_bar", [True, False])
def test_a_progress_bar_of_ones_own_replaces_scvaes(adata, capfd, enable_progress_bar):
    """Lightning allows one bar: a user's ``TQDMProgressBar`` is shown instead of scvae's
    (it failed with both, and with ``enable_progress_bar=False``)."""
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.GMVAE(adata, n_clusters=3, n_latent=2, n_hidden=8)
    capfd.readouterr()
    bar = TQDMProgressBar()
    model.train(max_epochs=2, callbacks=[bar], enable_progress_bar=enable_progress_bar)
    printed = "".join(capfd.readouterr())
    assert "Epoch 1" in printed  # Lightning's bar, by epoch
    assert "ELBO train=" not in printed  # not scvae's


def test_results_for_a_new_anndata_print_nothing(adata, capfd, monkeypatch):
    monkeypatch.setattr(scvi.settings, "verbosity", logging.INFO)  # scvi-tools' default
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, enable_progress_bar=False)
    query = synthetic_counts(n_cells=50, n_genes=adata.n_vars, n_clusters=3, seed=1)
    capfd.readouterr()
    assert model.get_latent_representation(query).shape == (50, 2)
    assert capfd.readouterr() == ("", "")
