"""Mean and variance of every distribution against Monte Carlo estimates from sample()."""

import pytest
import torch

from scvae.distributions import (
    ComponentMixture,
    ConstrainedPoisson,
    NegativeBinomial,
    PiecewiseCategorical,
    Poisson,
    ZeroInflatedNegativeBinomial,
    ZeroInflatedPoisson,
)

N_SAMPLES = 40_000
LOG_MEAN = torch.log(torch.tensor([[0.3, 2.0, 8.0, 25.0]], dtype=torch.float64))
LOG_THETA = torch.log(torch.tensor([0.7, 3.0, 1.5, 20.0], dtype=torch.float64))
ZI_LOGITS = torch.tensor([-1.0, 0.0, 1.5, -3.0], dtype=torch.float64)
CLASS_LOGITS = torch.tensor([[0.5, -1.0, 0.0], [1.0, 0.2, 2.0], [-2.0, 0.0, 3.0], [0, 0, 4.0]])

FACTORIES = {
    "poisson": lambda: Poisson(LOG_MEAN),
    "nb": lambda: NegativeBinomial(LOG_MEAN, LOG_THETA),
    "zip": lambda: ZeroInflatedPoisson(LOG_MEAN, ZI_LOGITS),
    "zinb": lambda: ZeroInflatedNegativeBinomial(LOG_MEAN, LOG_THETA, ZI_LOGITS),
    "constrained_poisson": lambda: ConstrainedPoisson.from_logits(LOG_MEAN, torch.tensor([[35.3]])),
    "piecewise_poisson": lambda: PiecewiseCategorical(Poisson(LOG_MEAN), CLASS_LOGITS.double()),
    "piecewise_nb": lambda: PiecewiseCategorical(
        NegativeBinomial(LOG_MEAN, LOG_THETA), CLASS_LOGITS.double()
    ),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_mean_and_variance_match_monte_carlo(name):
    torch.manual_seed(0)
    distribution = FACTORIES[name]()
    samples = distribution.sample((N_SAMPLES,)).double()
    assert samples.shape == (N_SAMPLES, *distribution.batch_shape)
    assert (samples >= 0).all() and (samples == samples.round()).all()
    mean, variance = distribution.mean, distribution.variance
    # Five standard errors of the sample mean; 10% on the (heavy-tailed) sample variance.
    standard_error = (variance / N_SAMPLES).sqrt()
    assert ((samples.mean(0) - mean).abs() <= 5 * standard_error).all(), (samples.mean(0), mean)
    torch.testing.assert_close(samples.var(0), variance, rtol=0.1, atol=1e-3)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_the_log_mean_is_the_log_of_the_mean(name):
    distribution = FACTORIES[name]()
    torch.testing.assert_close(distribution.log_mean, distribution.mean.log())


@pytest.mark.parametrize("name", list(FACTORIES))
def test_samples_are_ordinary_tensors(name):
    """A draw can be modified in place and fed to a network that is trained (torch's own
    distributions sample under no_grad; an inference-mode tensor would refuse both)."""
    samples = FACTORIES[name]().sample((2,))
    assert not samples.is_inference()
    samples.add_(1)
    torch.nn.Linear(samples.shape[-1], 1, dtype=samples.dtype)(samples).sum().backward()


def test_mixture_samples_are_ordinary_tensors():
    mixture = ComponentMixture(
        Poisson(LOG_MEAN.expand(3, 2, 4)), torch.log_softmax(torch.zeros(2, 3), -1)
    )
    assert not mixture.sample().is_inference()


@pytest.mark.parametrize("zero_inflated", [False, True])
def test_negative_binomial_samples_keep_means_above_1e8(zero_inflated):
    """Means of 1e9 counts are drawn as such (scvi-tools' sampler caps the Poisson rate at
    1e8)."""
    torch.manual_seed(0)
    log_mu, log_theta = torch.log(torch.tensor([1e9, 3.0])), torch.log(torch.tensor([1e4, 2.0]))
    if zero_inflated:
        distribution = ZeroInflatedNegativeBinomial(log_mu, log_theta, torch.full((2,), -30.0))
    else:
        distribution = NegativeBinomial(log_mu, log_theta)
    samples = distribution.sample((4000,)).double()
    standard_error = (distribution.variance.double() / 4000).sqrt()
    huge = NegativeBinomial(torch.tensor([50.0]), torch.tensor([0.0])).sample((3,))
    # Drawn at the capped rate, where torch's sampler overflowed to -9e18.
    assert ((huge - 2.0**31).abs() < 1e6).all()
    assert ((samples.mean(0) - distribution.mean) <= 5 * standard_error).all()
    assert ((samples.mean(0) - distribution.mean) >= -5 * standard_error).all()
