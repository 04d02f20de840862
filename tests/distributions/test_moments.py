"""Mean and variance of every distribution against Monte Carlo estimates from sample()."""

import pytest
import torch

from scvae.distributions import (
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
