"""Zero-inflated Poisson and negative binomial: exact log-pmf, float32 robustness, interop."""

import numpy as np
import scvi
import torch
from hypothesis import given, settings

from scvae.distributions import ZeroInflatedNegativeBinomial, ZeroInflatedPoisson
from tests.distributions._distribution_references import (
    COUNTS,
    LOG_RATES,
    LOG_THETAS,
    ZI_LOGITS,
    assert_float32_close,
    columns,
    float32_log_prob_and_grads,
    term_magnitude,
    zinb_logpmf,
    zip_logpmf,
)

SETTINGS = settings(max_examples=150, deadline=None, database=None)


@SETTINGS
@given(columns(COUNTS, LOG_RATES, ZI_LOGITS))
def test_zip_log_prob_matches_float64_reference(data):
    x, log_rate, zi_logits = data
    distribution = ZeroInflatedPoisson(torch.tensor(log_rate), torch.tensor(zi_logits))
    ours = distribution.log_prob(torch.tensor(x)).numpy()
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, zip_logpmf(x, log_rate, zi_logits), rtol=1e-5, atol=0)


@SETTINGS
@given(columns(COUNTS, LOG_RATES, ZI_LOGITS))
def test_zip_float32_finite_with_finite_gradients(data):
    x, log_rate, zi_logits = data
    ours, grads = float32_log_prob_and_grads(ZeroInflatedPoisson, [log_rate, zi_logits], x)
    assert all(np.all(np.isfinite(g)) for g in grads)
    reference = zip_logpmf(x, log_rate, zi_logits)
    assert_float32_close(ours, reference, term_magnitude(x, log_rate, zi_logits=zi_logits))


@SETTINGS
@given(columns(COUNTS, LOG_RATES, LOG_THETAS, ZI_LOGITS))
def test_zinb_log_prob_matches_mpmath_float64(data):
    x, log_mu, log_theta, zi_logits = data
    params = [torch.tensor(p) for p in (log_mu, log_theta, zi_logits)]
    ours = ZeroInflatedNegativeBinomial(*params).log_prob(torch.tensor(x)).numpy()
    assert np.all(np.isfinite(ours))
    reference = zinb_logpmf(x, log_mu, log_theta, zi_logits)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=0)


@SETTINGS
@given(columns(COUNTS, LOG_RATES, LOG_THETAS, ZI_LOGITS))
def test_zinb_float32_finite_with_finite_gradients(data):
    x, log_mu, log_theta, zi_logits = data
    params = [log_mu, log_theta, zi_logits]
    ours, grads = float32_log_prob_and_grads(ZeroInflatedNegativeBinomial, params, x)
    assert all(np.all(np.isfinite(g)) for g in grads)
    reference = zinb_logpmf(x, log_mu, log_theta, zi_logits)
    assert_float32_close(ours, reference, term_magnitude(x, log_mu, log_theta, zi_logits))


def test_zero_probability_near_one_keeps_relative_precision():
    # p(0) = 1 - sigmoid(-30) (1 - e^-1e-8) ~ 1 - 9e-22: the naive
    # logaddexp(30, -rate) - softplus(30) rounds this to a multiple of ulp(30) ~ 4e-15.
    log_rate = torch.tensor([np.log(1e-8), 0.0], dtype=torch.float64)
    zi_logits = torch.tensor([30.0, 30.0], dtype=torch.float64)
    ours = ZeroInflatedPoisson(log_rate, zi_logits).log_prob(torch.zeros(2, dtype=torch.float64))
    reference = zip_logpmf(np.zeros(2), log_rate.numpy(), zi_logits.numpy())
    np.testing.assert_allclose(ours.numpy(), reference, rtol=1e-6, atol=0)


def test_zip_moments_shapes_and_normalized_expression():
    log_rate = torch.randn(2, 3, 4, dtype=torch.float64)
    zi_logits = torch.randn(4, dtype=torch.float64)
    distribution = ZeroInflatedPoisson(log_rate, zi_logits)
    pi, rate = torch.sigmoid(zi_logits), log_rate.exp()
    assert distribution.batch_shape == (2, 3, 4)
    torch.testing.assert_close(distribution.mean, (1 - pi) * rate)
    torch.testing.assert_close(distribution.variance, (1 - pi) * rate * (1 + pi * rate))
    # The expression without the extra zeros, as scvi-tools' zero-inflated likelihoods give it.
    torch.testing.assert_close(distribution.get_normalized("mu"), rate)
    torch.testing.assert_close(
        distribution.get_normalized("scale"), rate / rate.sum(-1, keepdim=True)
    )
    assert distribution.sample((5,)).shape == (5, 2, 3, 4)


def test_zinb_is_an_scvi_zinb():
    log_mu = torch.randn(3, 4, dtype=torch.float64)
    log_theta = torch.randn(4, dtype=torch.float64)
    zi_logits = torch.randn(3, 4, dtype=torch.float64)
    distribution = ZeroInflatedNegativeBinomial(log_mu, log_theta, zi_logits)
    assert isinstance(distribution, scvi.distributions.ZeroInflatedNegativeBinomial)
    assert distribution.batch_shape == (3, 4)
    mu, theta, pi = log_mu.exp(), log_theta.exp(), torch.sigmoid(zi_logits)
    torch.testing.assert_close(distribution.mean, (1 - pi) * mu)
    torch.testing.assert_close(distribution.variance, (1 - pi) * mu * (1 + mu * (pi + 1 / theta)))
    torch.testing.assert_close(distribution.zi_probs, pi)
    scvi_zinb = scvi.distributions.ZeroInflatedNegativeBinomial(
        mu=mu, theta=theta.expand(3, 4), zi_logits=zi_logits, scale=mu / mu.sum(-1, keepdim=True)
    )
    counts = torch.poisson(mu)
    torch.testing.assert_close(
        distribution.log_prob(counts), scvi_zinb.log_prob(counts), rtol=1e-6, atol=1e-6
    )
    torch.testing.assert_close(distribution.variance, scvi_zinb.variance)
    for key in ("mu", "scale"):
        torch.testing.assert_close(distribution.get_normalized(key), scvi_zinb.get_normalized(key))
    assert distribution.sample((2,)).shape == (2, 3, 4)
