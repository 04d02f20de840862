"""The modules give the same loss and gradients for sparse CSR and dense minibatches."""

import pytest
import torch
from scvi import REGISTRY_KEYS

from scvae.module import GMVAEModule, VAEModule


@pytest.mark.parametrize("module_class", [VAEModule, GMVAEModule])
@pytest.mark.parametrize("likelihood", ["nb", "zinb", "poisson"])
def test_sparse_minibatch_gives_the_dense_loss_and_gradients(module_class, likelihood):
    torch.manual_seed(0)
    module = module_class(n_input=20, n_latent=3, n_hidden=[8], likelihood=likelihood)
    module = module.double().eval()  # no dropout; float64 so that only rounding could differ
    counts = torch.poisson(torch.full((9, 20), 0.5)).double()
    counts[3] = 0.0
    batch = torch.zeros(9, 1)
    results = []
    for x in (counts.to_sparse_csr(), counts):
        torch.manual_seed(1)  # the same z samples
        _, _, loss_output = module({REGISTRY_KEYS.X_KEY: x, REGISTRY_KEYS.BATCH_KEY: batch})
        grads = torch.autograd.grad(loss_output.loss, list(module.parameters()))
        results.append((loss_output.loss, loss_output.reconstruction_loss["reconstruction_loss"]))
        results[-1] += grads
    for from_sparse, from_dense in zip(*results, strict=True):
        torch.testing.assert_close(from_sparse, from_dense)
