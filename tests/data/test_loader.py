"""Minibatches from the converted tensors equal the registered AnnData rows, in every storage."""

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scvi import REGISTRY_KEYS

import scvae
from scvae.data import TensorDataLoader, _loader
from tests.helpers import QUIET


def _manager(adata):
    scvae.setup_anndata(adata, batch_key="batch")
    return scvae.VAE._get_most_recent_anndata_manager(adata, required=True)


def _batches(loader):
    return [(b[REGISTRY_KEYS.X_KEY].numpy(), b[REGISTRY_KEYS.BATCH_KEY].numpy()) for b in loader]


@pytest.mark.parametrize("storage", ["dense", "csr", "csr-gathered"])
def test_minibatches_equal_the_anndata_rows(adata, storage, monkeypatch):
    if storage == "dense":
        adata.X = adata.X.toarray()
    if storage == "csr-gathered":  # force the CSR path used for matrices too big to densify
        monkeypatch.setattr(_loader, "DENSE_LIMIT_BYTES", 0)
    manager = _manager(adata)
    indices = np.array([5, 3, 200, 17, 42, 0, 299])
    loader = TensorDataLoader(manager, indices=indices, batch_size=3)
    x, batch = (np.concatenate(parts) for parts in zip(*_batches(loader), strict=True))
    expected = adata.X[indices]
    np.testing.assert_array_equal(x, expected.toarray() if sp.issparse(expected) else expected)
    np.testing.assert_array_equal(batch.ravel(), adata.obs["_scvi_batch"].to_numpy()[indices])


def test_shuffled_epochs_cover_every_cell_once(adata):
    loader = TensorDataLoader(_manager(adata), batch_size=64, shuffle=True)
    torch.manual_seed(0)
    totals = np.concatenate([x.sum(1) for x, _ in _batches(loader)])
    np.testing.assert_allclose(np.sort(totals), np.sort(np.asarray(adata.X.sum(1)).ravel()))


def test_training_and_inference_from_a_backed_file(adata, tmp_path):
    path = tmp_path / "counts.h5ad"
    adata.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    scvae.setup_anndata(backed)
    model = scvae.VAE(backed, n_hidden=16)
    model.train(max_epochs=2, annotate=False, **QUIET)
    in_memory = ad.read_h5ad(path)
    loader = TensorDataLoader(
        scvae.VAE._get_most_recent_anndata_manager(backed), indices=[7, 2, 9], batch_size=3
    )
    ((x, _),) = _batches(loader)
    np.testing.assert_array_equal(x, in_memory.X[[7, 2, 9]].toarray())
    assert model.get_latent_representation().shape == (adata.n_obs, 10)


def test_minibatches_are_pinned_only_for_copies_to_a_gpu(adata, monkeypatch):
    manager = _manager(adata)
    assert not TensorDataLoader(manager, pin_memory=False).pin_memory
    # Without CUDA there is nothing to copy to, so pinning is switched off.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not TensorDataLoader(manager, pin_memory=True).pin_memory
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert TensorDataLoader(manager, pin_memory=True).pin_memory
