"""The GMVAE modules' maths: exact sums over components, one graph, gradients everywhere."""

import math

import pytest
import torch
from scvi import REGISTRY_KEYS
from torch.distributions import Normal, kl_divergence

from scvae.module import ComponentGMVAEModule, GMVAEModule


def _tensors(n_cells=16, n_genes=30, seed=0):
    generator = torch.Generator().manual_seed(seed)
    counts = torch.poisson(torch.full((n_cells, n_genes), 3.0), generator=generator)
    batch = torch.zeros(n_cells, 1)
    return {REGISTRY_KEYS.X_KEY: counts, REGISTRY_KEYS.BATCH_KEY: batch}


def _shared(cluster_posterior, **kwargs):
    torch.manual_seed(0)
    module = GMVAEModule(
        30, n_components=3, n_latent=2, n_hidden=[8], cluster_posterior=cluster_posterior, **kwargs
    )
    with torch.no_grad():  # components apart, unequal scales and weights
        module.prior.means.copy_(torch.tensor([[0.0, 0.0], [2.0, -1.0], [-1.5, 1.0]]))
        module.prior.scales_raw.copy_(torch.tensor([[0.0, 0.5], [-0.5, 0.0], [0.3, 0.3]]))
    return module.eval()


MODULES = {
    "responsibilities": lambda: _shared("responsibilities", prior="learned"),
    "classifier": lambda: _shared("classifier"),
    "per_component": lambda: (
        torch.manual_seed(0),
        ComponentGMVAEModule(30, n_components=3, n_latent=2, n_hidden=[8], prior="learned"),
    )[1],
}


@pytest.mark.parametrize("form", list(MODULES))
def test_one_optimisation_step_needs_no_retain_graph_and_reaches_every_parameter(form):
    module = MODULES[form]().train()
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


def _explicit_shared_elbo(module, inference, generative, x):
    """The ELBO written as a Python loop over components, on the same sample of z."""
    qz, prior = inference["qz"], module.prior
    log_qy = torch.log_softmax(inference["qy_logits"], -1)
    elbo = generative["px"].log_prob(x).sum(-1)
    for k in range(module.n_components):
        pz_k = Normal(prior.means[k], prior.scales[k])
        kl_k = kl_divergence(Normal(qz.loc, qz.scale), pz_k).sum(-1)
        log_pi_k = prior.log_weights()[k]
        elbo = elbo - log_qy[:, k].exp() * (kl_k + log_qy[:, k] - log_pi_k)
    return elbo


@pytest.mark.parametrize("form", ["responsibilities", "classifier"])
def test_shared_forms_elbo_sums_every_component_exactly(form):
    module = MODULES[form]()
    tensors = _tensors()
    inference, generative, loss_output = module(tensors)
    expected = _explicit_shared_elbo(module, inference, generative, tensors[REGISTRY_KEYS.X_KEY])
    (reconstruction,) = loss_output.reconstruction_loss.values()
    elbo = -(reconstruction + loss_output.kl_local["kl_z"] + loss_output.kl_local["kl_y"])
    torch.testing.assert_close(elbo, expected)


def test_responsibilities_maximise_the_elbo_over_q_y_and_sum_to_a_log_sum_exp():
    module = MODULES["responsibilities"]()
    tensors = _tensors()
    inference, generative, loss_output = module(tensors)
    kl = module.prior.kl_from(inference["qz"])
    log_weights = module.prior.log_weights()
    kl_total = loss_output.kl_local["kl_z"] + loss_output.kl_local["kl_y"]
    torch.testing.assert_close(kl_total, -torch.logsumexp(log_weights - kl, -1))
    x = tensors[REGISTRY_KEYS.X_KEY]
    optimal = _explicit_shared_elbo(module, inference, generative, x)
    for seed in range(3):  # any other q(y|x) gives a lower bound
        other = dict(
            inference,
            qy_logits=torch.randn(kl.shape, generator=torch.Generator().manual_seed(seed)),
        )
        assert (_explicit_shared_elbo(module, other, generative, x) <= optimal + 1e-5).all()


def test_components_at_the_origin_make_the_gmvae_a_vae_with_a_standard_normal_prior():
    torch.manual_seed(0)
    module = GMVAEModule(30, n_components=4, n_latent=2, n_hidden=[8]).eval()  # spread 0
    inference, _, loss_output = module(_tensors())
    qy = torch.softmax(inference["qy_logits"], -1)
    torch.testing.assert_close(qy, torch.full_like(qy, 0.25))
    standard = Normal(torch.zeros(2), torch.ones(2))
    qz = inference["qz"]
    expected = kl_divergence(Normal(qz.loc, qz.scale), standard).sum(-1)
    torch.testing.assert_close(loss_output.kl_local["kl_z"], expected)
    torch.testing.assert_close(loss_output.kl_local["kl_y"], torch.zeros_like(expected))


def test_per_component_elbo_sums_every_component_exactly():
    module = MODULES["per_component"]().eval()
    tensors = _tensors()
    inference, generative, loss_output = module(tensors)
    qy = torch.softmax(inference["qy_logits"], -1)
    x = tensors[REGISTRY_KEYS.X_KEY]
    expected = torch.zeros(len(x))
    pz, log_pi = generative["pz"], module.prior.log_weights()
    for k in range(3):
        rec = -generative["px_components"].log_prob(x)[k].sum(-1)
        qz_k = Normal(inference["qz"].loc[k], inference["qz"].scale[k])
        pz_k = Normal(pz.loc[k, 0], pz.scale[k, 0])
        kl = kl_divergence(qz_k, pz_k).sum(-1)
        expected += qy[:, k] * (rec + kl + qy[:, k].log() - log_pi[k])
    (reconstruction,) = loss_output.reconstruction_loss.values()
    kl_total = loss_output.kl_local["kl_z"] + loss_output.kl_local["kl_y"]
    torch.testing.assert_close(reconstruction + kl_total, expected)


@pytest.mark.parametrize("form", list(MODULES))
def test_the_importance_weighted_log_likelihood_bounds_the_elbo(form):
    """log p(x) >= the S-sample bound, which rises with S from the one-sample bound (itself
    an ELBO with y summed out, so at least the model's); each mean of 50 draws, compared
    beyond five standard errors."""
    module = MODULES[form]().eval()
    tensors = _tensors(n_cells=6)
    torch.manual_seed(1)
    elbos = torch.stack([-module(tensors)[2].loss for _ in range(50)])  # mean ELBO per draw
    one = torch.tensor([module.marginal_ll(tensors, 1, return_mean=True) for _ in range(50)])
    log_px = module.marginal_ll(tensors, n_mc_samples=400, return_mean=True)
    margin = 5 * max(elbos.std(), one.std()).item() / math.sqrt(50)
    assert one.mean() > elbos.mean() - margin
    assert log_px > one.mean() + margin
    assert math.isfinite(log_px)


def test_an_unknown_cluster_posterior_is_named():
    with pytest.raises(ValueError, match=r"cluster_posterior='kmeans' is not one of"):
        GMVAEModule(30, cluster_posterior="kmeans")
