"""Training on a GPU: the counts stay on the device, and the results match the CPU's maths."""

import copy

import lightning.pytorch as pl
import numpy as np
import pytest
import scvi
import torch

import scvae
from scvae._counts import library_size
from tests.helpers import QUIET, mostly_zeros, requires_cuda

pytestmark = requires_cuda


class CountsDevice(pl.Callback):
    """Records where the training data loader keeps the counts."""

    def on_train_start(self, trainer, pl_module):
        self.device = trainer.train_dataloader.dataset.counts.device


@pytest.mark.parametrize("model_cls", [scvae.VAE, scvae.GMVAE])
def test_training_on_the_gpu_keeps_the_counts_there_and_matches_the_cpu(adata, model_cls, tmp_path):
    scvae.setup_anndata(adata)
    scvi.settings.seed = 0
    kwargs = {"n_clusters": 3} if model_cls is scvae.GMVAE else {}
    model = model_cls(adata, n_hidden=16, **kwargs)
    where = CountsDevice()
    model.train(max_epochs=3, accelerator="gpu", devices=1, callbacks=[where], **QUIET)
    assert where.device.type == "cuda" and model.device.type == "cuda"
    latent_gpu = model.get_latent_representation()
    assert np.isfinite(latent_gpu).all()
    np.testing.assert_array_equal(adata.obsm["X_scvae"], latent_gpu)

    model.save(tmp_path / "model")
    on_cpu = model_cls.load(tmp_path / "model", adata=adata.copy(), accelerator="cpu")
    assert on_cpu.device.type == "cpu"
    np.testing.assert_allclose(on_cpu.get_latent_representation(), latent_gpu, atol=1e-4)
    if model_cls is scvae.GMVAE:
        np.testing.assert_array_equal(on_cpu.predict(), model.predict())


class Layouts(pl.Callback):
    """Records the layout and device of every training minibatch's counts."""

    def __init__(self):
        self.seen = set()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.add((batch["X"].layout, batch["X"].device.type))


def test_sparse_minibatches_on_the_gpu_give_the_cpu_values(adata):
    adata = mostly_zeros(adata)
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_hidden=16)
    layouts = Layouts()
    model.train(max_epochs=2, accelerator="gpu", devices=1, callbacks=[layouts], **QUIET)
    assert layouts.seen == {(torch.sparse_csr, "cuda")}
    assert np.isfinite(model.history["elbo_train"].to_numpy(dtype=float)).all()
    # The trained module on sparse GPU counts and on dense CPU counts: same encoding and
    # same log-likelihood at the posterior mean.
    counts = torch.as_tensor(adata.X[:50].toarray())
    batch = torch.zeros(50)
    values = []
    for module, x in (
        (model.module, counts.to_sparse_csr().cuda()),
        (copy.deepcopy(model.module).cpu(), counts),
    ):
        with torch.no_grad():
            qz = module.inference(x, batch.to(x.device))["qz"]
            px = module.generative(qz.loc, library_size(x), batch.to(x.device))["px"]
            values.append((qz.loc.cpu(), px.log_prob(x).sum(-1).cpu()))
    for on_gpu, on_cpu in zip(*values, strict=True):
        torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)


def test_training_on_the_gpu_from_a_backed_file_keeps_the_counts_on_the_host(backed):
    backed, in_memory = backed
    model = scvae.VAE(backed, n_hidden=16)
    where = CountsDevice()
    model.train(max_epochs=2, accelerator="gpu", devices=1, callbacks=[where], **QUIET)
    assert where.device.type == "cpu" and model.device.type == "cuda"
    assert model.get_latent_representation().shape == (in_memory.n_obs, 10)


def test_gpu_log_likelihoods_equal_the_cpu_ones():
    counts = torch.distributions.Poisson(torch.full((50, 200), 0.3)).sample()
    log_mu = torch.randn(50, 200)
    log_theta = torch.randn(200)
    cpu = scvae.distributions.NegativeBinomial(log_mu=log_mu, log_theta=log_theta)
    gpu = scvae.distributions.NegativeBinomial(log_mu=log_mu.cuda(), log_theta=log_theta.cuda())
    torch.testing.assert_close(gpu.log_prob(counts.cuda()).cpu(), cpu.log_prob(counts))
