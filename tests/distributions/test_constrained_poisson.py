"""Constrained Poisson: rates are softmax(logits) * library."""

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from scvae.distributions import ConstrainedPoisson, Poisson
from tests.distributions._distribution_references import (
    COUNTS,
    assert_float32_close,
    columns,
    float32_log_prob_and_grads,
    poisson_logpmf,
    term_magnitude,
)

SETTINGS = settings(max_examples=150, deadline=None, database=None)
LOGITS = st.floats(-20.0, 20.0)
LOG_LIBRARIES = st.floats(0.0, math.log(1e6))


def _reference(x, logits, log_library):
    return poisson_logpmf(x, special.log_softmax(logits) + log_library)


@SETTINGS
@given(columns(COUNTS, LOGITS), LOG_LIBRARIES)
def test_log_prob_matches_float64_reference(data, log_library):
    x, logits = data
    library = torch.tensor([[math.exp(log_library)]], dtype=torch.float64)
    distribution = ConstrainedPoisson.from_logits(torch.tensor(logits)[None], library)
    ours = distribution.log_prob(torch.tensor(x)[None])[0].numpy()
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, _reference(x, logits, log_library), rtol=1e-5, atol=0)


@SETTINGS
@given(columns(COUNTS, LOGITS), LOG_LIBRARIES)
def test_float32_finite_with_finite_gradients(data, log_library):
    x, logits = data
    library = np.full((1, 1), math.exp(log_library))
    ours, grads = float32_log_prob_and_grads(
        ConstrainedPoisson.from_logits, [logits[None], library], x[None]
    )
    assert all(np.all(np.isfinite(g)) for g in grads)
    log_rate = special.log_softmax(logits) + log_library
    reference = poisson_logpmf(x, log_rate)
    assert_float32_close(ours[0], reference, term_magnitude(x, log_rate))


def test_rates_sum_to_library_and_normalized():
    logits = torch.randn(4, 3, 50, dtype=torch.float64) * 5  # (samples, cells, genes)
    library = torch.tensor([[10.0], [2000.0], [1e5]], dtype=torch.float64)
    distribution = ConstrainedPoisson.from_logits(logits, library)
    assert isinstance(distribution, Poisson)
    assert distribution.batch_shape == (4, 3, 50)
    torch.testing.assert_close(distribution.rate.sum(-1, keepdim=True), library.expand(4, 3, 1))
    torch.testing.assert_close(distribution.scale, torch.softmax(logits, -1))
    torch.testing.assert_close(distribution.get_normalized("scale"), torch.softmax(logits, -1))
    torch.testing.assert_close(distribution.get_normalized("mu"), distribution.rate)
    assert distribution.sample((2,)).shape == (2, 4, 3, 50)
