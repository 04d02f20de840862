"""The VAE module's loss is the negative ELBO of its own terms."""

import torch
from scvi import REGISTRY_KEYS
from torch.distributions import Poisson

from scvae.module import VAEModule
from tests.module.test_gmvae_module import _tensors


def test_the_loss_is_the_poisson_log_likelihood_and_the_kl_to_a_standard_normal():
    torch.manual_seed(0)
    module = VAEModule(30, n_latent=2, n_hidden=[8], likelihood="poisson").eval()
    tensors = _tensors(n_cells=6)
    inference, generative, losses = module(tensors, loss_kwargs={"kl_weight": 0.5})
    qz, x = inference["qz"], tensors[REGISTRY_KEYS.X_KEY]
    # KL(N(m, s^2) || N(0, 1)) = (m^2 + s^2 - 1) / 2 - log s, per latent dimension.
    kl = ((qz.loc**2 + qz.scale**2 - 1) / 2 - qz.scale.log()).sum(-1)
    reconstruction = -Poisson(generative["px"].mean).log_prob(x).sum(-1)
    torch.testing.assert_close(losses.dict_sum(losses.kl_local), kl)
    torch.testing.assert_close(losses.dict_sum(losses.reconstruction_loss), reconstruction)
    torch.testing.assert_close(losses.loss, (reconstruction + 0.5 * kl).mean())
