"""Poisson: exact log-pmf against scipy, float32 robustness, the 28000-gene row."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from scvae.distributions import Poisson, ZeroInflatedPoisson
from scvae.distributions._poisson import MAX_SAMPLED_RATE
from tests.distributions._distribution_references import (
    COUNTS,
    LOG_RATES,
    assert_float32_close,
    columns,
    float32_log_prob_and_grads,
    poisson_logpmf,
    term_magnitude,
)

SETTINGS = settings(max_examples=150, deadline=None, database=None)


@SETTINGS
@given(columns(COUNTS, LOG_RATES))
def test_log_prob_matches_scipy_float64(data):
    x, log_rate = data
    ours = Poisson(torch.tensor(log_rate)).log_prob(torch.tensor(x)).numpy()
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, poisson_logpmf(x, log_rate), rtol=1e-5, atol=0)


@SETTINGS
@given(columns(COUNTS, LOG_RATES))
def test_float32_finite_with_finite_gradients(data):
    x, log_rate = data
    ours, grads = float32_log_prob_and_grads(Poisson, [log_rate], x)
    assert all(np.all(np.isfinite(g)) for g in grads)
    assert_float32_close(ours, poisson_logpmf(x, log_rate), term_magnitude(x, log_rate))


def test_rate_far_below_float32_range_is_exact():
    # exp(-200) underflows to 0 in float32; the log-rate parameterisation never forms it.
    log_rate = torch.tensor([-200.0, -200.0])
    log_prob = Poisson(log_rate).log_prob(torch.tensor([0.0, 3.0]))
    assert log_prob[0].item() == 0.0
    assert log_prob[1].item() == pytest.approx(3 * -200.0 - math.lgamma(4), rel=1e-6)


def _sparse_row(dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """One 28000-gene cell: 93% zeros, counts up to 1e4, log-uniform rates 1e-8 .. 1e4."""
    rng = np.random.default_rng(0)
    n_genes = 28_000
    counts = np.floor(np.exp(rng.uniform(0, math.log(1e4), n_genes)))
    counts[rng.random(n_genes) < 0.93] = 0
    counts[:3] = [1e4, 1.0, 0.0]
    log_rate = rng.uniform(math.log(1e-8), math.log(1e4), n_genes)
    log_rate[:3] = math.log(1e-8)  # a count of 1e4 at rate 1e-8 included
    return counts, log_rate


@pytest.mark.parametrize(
    ("dtype", "rtol"),
    # float32: relative error of the row total measured at 5e-8 (the total is ~ -3.6e7).
    [(torch.float64, 1e-10), (torch.float32, 1e-6)],
)
def test_sparse_row_total_log_likelihood(dtype, rtol):
    counts, log_rate = _sparse_row(dtype)
    distribution = Poisson(torch.tensor(log_rate, dtype=dtype)[None])
    total = distribution.log_prob(torch.tensor(counts, dtype=dtype)[None]).sum()
    reference = poisson_logpmf(counts, log_rate).sum()
    assert torch.isfinite(total)
    assert total.item() == pytest.approx(reference, rel=rtol)


def test_shapes_rate_and_normalized():
    log_rate = torch.randn(4, 3, 5, dtype=torch.float64)  # (samples, cells, genes)
    distribution = Poisson(log_rate)
    assert distribution.batch_shape == (4, 3, 5)
    torch.testing.assert_close(distribution.rate, log_rate.exp())
    assert distribution.log_prob(torch.ones(3, 5, dtype=torch.float64)).shape == (4, 3, 5)
    assert distribution.sample((2,)).shape == (2, 4, 3, 5)
    torch.testing.assert_close(distribution.get_normalized("mu"), log_rate.exp())
    scale = distribution.get_normalized("scale")
    torch.testing.assert_close(scale, log_rate.exp() / log_rate.exp().sum(-1, keepdim=True))
    log_scale = torch.randn(4, 3, 5)
    given = Poisson(log_rate, log_scale=log_scale).get_normalized("scale")
    torch.testing.assert_close(given, log_scale.exp())
    with pytest.raises(ValueError, match="not recognized"):
        distribution.get_normalized("rate")


def test_a_rate_of_zero_gives_probability_one_to_zero_counts():
    log_rate = torch.tensor([-math.inf, -math.inf, 0.0], requires_grad=True)
    log_prob = Poisson(log_rate).log_prob(torch.tensor([0.0, 1.0, 1.0]))
    assert log_prob[[0, 2]].tolist() == [0.0, -1.0] and log_prob[1] <= torch.finfo().min
    log_prob[[0, 2]].sum().backward()
    assert torch.isfinite(log_rate.grad).all()


@pytest.mark.parametrize("likelihood", [Poisson, ZeroInflatedPoisson])
def test_samples_of_a_rate_beyond_the_samplers_range_stay_non_negative_counts(likelihood):
    # torch.poisson overflows int64 from rates of about 9.2e18 (negative counts on a CPU).
    log_rate = torch.tensor([[math.log(1e19), math.log(1e25), math.log(5.0)]])
    args = (log_rate,) if likelihood is Poisson else (log_rate, torch.full_like(log_rate, -40.0))
    draws = likelihood(*args).sample((50,))
    assert torch.all(draws >= 0) and torch.all(draws[..., :2] <= 1.01 * MAX_SAMPLED_RATE)
