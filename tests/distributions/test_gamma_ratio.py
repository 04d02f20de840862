"""Log-gamma and digamma differences: exact where subtracting two lgamma values is not."""

import math

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scvae.distributions import NegativeBinomial
from scvae.distributions._gamma_ratio import digamma_excess, log_gamma_ratio
from tests.distributions._distribution_references import (
    MPMATH_DIGITS,
    columns,
    float32_log_prob_and_grads,
    nb_logpmf,
)

#: Inverse dispersions from 1e-4 up to 1e8: nearly Poisson genes are fitted with huge ones.
WIDE_LOG_THETAS = st.floats(math.log(1e-4), math.log(1e8))
COUNTS = st.one_of(st.integers(0, 20), st.integers(0, 100_000)).map(float)


def _mp_references(x: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with mpmath.workdps(MPMATH_DIGITS):
        pairs = [
            (
                mpmath.loggamma(xi + ti) - mpmath.loggamma(ti),
                ti * (mpmath.digamma(xi + ti) - mpmath.digamma(ti)) - xi,
            )
            for xi, ti in zip(map(mpmath.mpf, x), map(mpmath.mpf, theta), strict=True)
        ]
    return np.array([float(p[0]) for p in pairs]), np.array([float(p[1]) for p in pairs])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@settings(max_examples=150, deadline=None, database=None)
@given(data=columns(COUNTS, WIDE_LOG_THETAS))
def test_differences_match_mpmath_to_rounding(dtype, data):
    x, log_theta = data
    theta = np.exp(log_theta)
    log_ratio, excess = _mp_references(x, theta)
    x_t, theta_t = torch.tensor(x, dtype=dtype), torch.tensor(theta, dtype=dtype)
    eps = torch.finfo(dtype).eps
    # Rounding of the largest terms: x log(theta + x), and the result itself.
    magnitude = np.abs(log_ratio) + x * (np.abs(np.log(theta + x)) + 1) + 1
    error = np.abs(log_gamma_ratio(x_t, theta_t).double().numpy() - log_ratio)
    assert np.all(error <= 16 * eps * magnitude), (error / magnitude).max()
    # theta [psi(x + theta) - psi(theta)] - x: about -x(x - 1) / 2 theta for theta >> x,
    # about -x for theta << x; rounding of terms of those sizes.
    error = np.abs(digamma_excess(x_t, theta_t).double().numpy() - excess)
    magnitude = np.abs(excess) + x * (x + 6) / (theta + x)
    assert np.all(error <= 16 * eps * magnitude), (error / magnitude).max()


def test_zero_counts_give_exact_zeros():
    theta = torch.logspace(-4, 8, 25)
    assert torch.equal(log_gamma_ratio(torch.zeros(25), theta), torch.zeros(25))
    assert torch.equal(digamma_excess(torch.zeros(25), theta), torch.zeros(25))


@settings(max_examples=150, deadline=None, database=None)
@given(
    columns(
        st.integers(0, 1000).map(float),
        st.floats(math.log(1e-2), math.log(1e3)),
        st.floats(math.log(1e4), math.log(1e8)),
    )
)
def test_float32_negative_binomial_is_exact_for_nearly_poisson_genes(data):
    # torch.lgamma(x + theta) - torch.lgamma(theta) in float32 fails this: at theta = 1e5 each
    # term is about 1e6, whose float32 spacing is 0.06.
    x, log_mu, log_theta = data
    mu, theta = np.exp(log_mu), np.exp(log_theta)
    ours, (_, grad_log_theta) = float32_log_prob_and_grads(NegativeBinomial, [log_mu, log_theta], x)
    reference = nb_logpmf(x, log_mu, log_theta)
    eps = np.finfo(np.float32).eps
    magnitude = np.abs(reference) + x * np.abs(log_mu) + x * np.log(theta) + mu + 1
    assert np.all(np.abs(ours - reference) <= 16 * eps * magnitude)
    # d log p / d log theta = theta [psi(x + theta) - psi(theta) + log(theta / (theta + mu))
    # + (mu - x) / (theta + mu)]: a difference of O(x) terms that is O(x^2 / theta).
    with mpmath.workdps(MPMATH_DIGITS):
        expected = np.array(
            [
                float(
                    t
                    * (
                        mpmath.digamma(mpmath.mpf(xi) + t)
                        - mpmath.digamma(t)
                        + mpmath.log(t / (t + m))
                        + (m - xi) / (t + m)
                    )
                )
                for xi, m, t in zip(x, map(mpmath.mpf, mu), map(mpmath.mpf, theta), strict=True)
            ]
        )
    assert np.all(np.abs(grad_log_theta - expected) <= 64 * eps * (x + mu + 1))
