"""The GMVAE's maths: one graph, exact sum over components, gradients everywhere."""

import torch
from scvi import REGISTRY_KEYS

from scvae.module import ComponentGMVAEModule as GMVAEModule


def _tensors(n_cells=16, n_genes=30, seed=0):
    generator = torch.Generator().manual_seed(seed)
    counts = torch.poisson(torch.full((n_cells, n_genes), 3.0), generator=generator)
    batch = torch.zeros(n_cells, 1)
    return {REGISTRY_KEYS.X_KEY: counts, REGISTRY_KEYS.BATCH_KEY: batch}


def test_one_optimisation_step_needs_no_retain_graph_and_reaches_every_parameter():
    module = GMVAEModule(30, n_clusters=4, n_latent=3, n_hidden=[16, 8], prior="learned")
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    for _ in range(2):  # a second step on a fresh graph works too
        optimizer.zero_grad()
        _, _, loss_output = module(_tensors())
        loss_output.loss.backward()  # plain backward: no retain_graph
        optimizer.step()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_elbo_sums_every_component_exactly():
    torch.manual_seed(0)
    module = GMVAEModule(30, n_clusters=3, n_latent=2, n_hidden=[8]).eval()
    tensors = _tensors()
    inference, generative, loss_output = module(tensors)
    qy = torch.softmax(inference["qy_logits"], -1)
    x = tensors[REGISTRY_KEYS.X_KEY]
    # The same sum written as a Python loop over components, on the same z samples.
    expected = torch.zeros(len(x))
    pz = generative["pz"]
    for k in range(3):
        rec = -generative["px_components"].log_prob(x)[k].sum(-1)
        qz_k = torch.distributions.Normal(inference["qz"].loc[k], inference["qz"].scale[k])
        pz_k = torch.distributions.Normal(pz.loc[k, 0], pz.scale[k, 0])
        kl = torch.distributions.kl_divergence(qz_k, pz_k).sum(-1)
        expected += qy[:, k] * (rec + kl)
    expected += (qy * (qy.log() - torch.log(torch.tensor(1 / 3)))).sum(-1)
    (reconstruction,) = loss_output.reconstruction_loss.values()
    kl_total = loss_output.kl_local["kl_z"] + loss_output.kl_local["kl_y"]
    torch.testing.assert_close(reconstruction + kl_total, expected)
