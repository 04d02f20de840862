"""Piecewise categorical: exact log-pmf per base, normalisation, shapes, log-softmax."""

import math

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special

from scvae.distributions import ConstrainedPoisson, NegativeBinomial, PiecewiseCategorical, Poisson
from scvae.distributions._utils import log_softmax as log_softmax_accurate
from tests.distributions._distribution_references import (
    COUNTS,
    LOG_RATES,
    LOG_THETAS,
    columns,
    log_softmax,
    nb_logpmf,
    piecewise_logpmf,
    poisson_logpmf,
)

SETTINGS = settings(max_examples=100, deadline=None, database=None)
CLASS_LOGITS = st.floats(-30.0, 30.0)


@st.composite
def piecewise_inputs(draw, n_base_params: int):
    """Counts, base parameters (each (n,)) and class logits (n, k + 1) for a cutoff k <= 5."""
    columns_ = draw(columns(COUNTS, *[LOG_RATES, LOG_THETAS][:n_base_params]))
    n, k = len(columns_[0]), draw(st.integers(1, 5))
    class_logits = draw(hnp.arrays(np.float64, (n, k + 1), elements=CLASS_LOGITS))
    return columns_, class_logits


def _check(ours: torch.Tensor, reference: np.ndarray) -> None:
    assert np.all(np.isfinite(ours.numpy()))
    np.testing.assert_allclose(ours.numpy(), reference, rtol=1e-5, atol=0)


@SETTINGS
@given(piecewise_inputs(1))
def test_poisson_base_matches_reference(inputs):
    (x, log_rate), class_logits = inputs
    k = class_logits.shape[-1] - 1
    distribution = PiecewiseCategorical(Poisson(torch.tensor(log_rate)), torch.tensor(class_logits))
    assert distribution.cutoff == k
    reference = piecewise_logpmf(x, class_logits, poisson_logpmf(np.maximum(x - k, 0), log_rate))
    _check(distribution.log_prob(torch.tensor(x)), reference)


@SETTINGS
@given(piecewise_inputs(2))
def test_negative_binomial_base_matches_reference(inputs):
    (x, log_mu, log_theta), class_logits = inputs
    k = class_logits.shape[-1] - 1
    base = NegativeBinomial(torch.tensor(log_mu), torch.tensor(log_theta))
    distribution = PiecewiseCategorical(base, torch.tensor(class_logits))
    base_reference = nb_logpmf(np.maximum(x - k, 0), log_mu, log_theta)
    _check(
        distribution.log_prob(torch.tensor(x)), piecewise_logpmf(x, class_logits, base_reference)
    )


@SETTINGS
@given(piecewise_inputs(1), st.floats(0.0, math.log(1e6)))
def test_constrained_poisson_base_matches_reference(inputs, log_library):
    (x, gene_logits), class_logits = inputs
    k = class_logits.shape[-1] - 1
    library = torch.tensor([[math.exp(log_library)]], dtype=torch.float64)
    base = ConstrainedPoisson.from_logits(torch.tensor(gene_logits)[None], library)
    distribution = PiecewiseCategorical(base, torch.tensor(class_logits)[None])
    log_rate = special.log_softmax(gene_logits) + log_library
    reference = piecewise_logpmf(x, class_logits, poisson_logpmf(np.maximum(x - k, 0), log_rate))
    _check(distribution.log_prob(torch.tensor(x)[None])[0], reference)


@SETTINGS
@given(piecewise_inputs(2))
def test_float32_finite_with_finite_gradients(inputs):
    (x, log_mu, log_theta), class_logits = inputs
    leaves = [
        torch.tensor(p, dtype=torch.float32, requires_grad=True)
        for p in (log_mu, log_theta, class_logits)
    ]
    for base in (Poisson(leaves[0]), NegativeBinomial(leaves[0], leaves[1])):
        log_prob = PiecewiseCategorical(base, leaves[2]).log_prob(torch.tensor(x).float())
        assert torch.isfinite(log_prob).all()
        log_prob.sum().backward()
    assert all(torch.isfinite(leaf.grad).all() for leaf in leaves)


def _bases() -> dict[str, object]:
    log_mean = torch.log(torch.tensor([[0.01, 1.0, 7.0, 40.0]], dtype=torch.float64))
    return {
        "poisson": Poisson(log_mean),
        "nb": NegativeBinomial(
            log_mean, torch.log(torch.tensor([2.0, 0.5, 5.0, 30.0], dtype=torch.float64))
        ),
        "constrained_poisson": ConstrainedPoisson.from_logits(
            log_mean, torch.tensor([[48.01]], dtype=torch.float64)
        ),
    }


@pytest.mark.parametrize("base_name", ["poisson", "nb", "constrained_poisson"])
def test_probabilities_sum_to_one(base_name):
    base = _bases()[base_name]
    class_logits = torch.randn(1, 4, 4, generator=torch.Generator().manual_seed(0)) * 3
    distribution = PiecewiseCategorical(base, class_logits.double())
    support = torch.arange(4000, dtype=torch.float64).reshape(-1, 1, 1)
    log_total = torch.logsumexp(distribution.log_prob(support), dim=0)
    torch.testing.assert_close(log_total, torch.zeros_like(log_total), rtol=0, atol=1e-10)
    # The exact mean and variance agree with the sums over the support.
    probs = distribution.log_prob(support).exp()
    mean = (probs * support).sum(0)
    torch.testing.assert_close(distribution.mean, mean)
    torch.testing.assert_close(distribution.variance, (probs * (support - mean) ** 2).sum(0))


@pytest.mark.parametrize("tail_mean", [1e5, 1e6, 1e7])
def test_float32_variance_of_a_large_tail_is_that_of_the_tail(tail_mean):
    # Nearly all mass in the tail: the variance is the tail's, Var[Y] = tail_mean, which
    # E[X^2] - E[X]^2 loses in float32 (16% low at 1e7).
    base = Poisson(torch.tensor([[tail_mean]]).log())
    distribution = PiecewiseCategorical(base, torch.tensor([[[-30.0, -30.0, 30.0]]]))
    assert distribution.variance.dtype == torch.float32
    torch.testing.assert_close(
        distribution.variance, torch.tensor([[tail_mean]]), rtol=1e-5, atol=0
    )


def test_shapes_sampling_and_normalized():
    base = ConstrainedPoisson.from_logits(
        torch.randn(6, 3, 5), torch.tensor([[10.0], [100.0], [1e3]])
    )
    distribution = PiecewiseCategorical(base, torch.randn(3, 5, 4))  # (cells, genes, k + 1)
    assert distribution.batch_shape == (6, 3, 5)
    assert distribution.log_prob(torch.ones(3, 5)).shape == (6, 3, 5)
    samples = distribution.sample((2,))
    assert samples.shape == (2, 6, 3, 5)
    assert (samples >= 0).all() and (samples == samples.round()).all()
    mean = distribution.mean
    torch.testing.assert_close(distribution.get_normalized("mu"), mean)
    torch.testing.assert_close(
        distribution.get_normalized("scale"), mean / mean.sum(-1, keepdim=True)
    )


def test_normalized_expression_is_finite_when_a_tail_mean_exceeds_float32():
    # A tail mean of e^100 overflows float32; in log space the gene still takes the share.
    base = NegativeBinomial(torch.tensor([[100.0, 0.0, -5.0]]), torch.zeros(3))
    scale = PiecewiseCategorical(base, torch.zeros(3, 4)).get_normalized("scale")
    assert torch.isfinite(scale).all()
    torch.testing.assert_close(scale.sum(-1), torch.ones(1))
    assert scale[0, 0] == pytest.approx(1.0)
    base64 = NegativeBinomial(base.log_mu.double(), torch.zeros(3, dtype=torch.float64))
    reference = PiecewiseCategorical(base64, torch.zeros(3, 4, dtype=torch.float64))
    expected = reference.get_normalized("scale")
    torch.testing.assert_close(scale.double(), expected, rtol=1e-5, atol=1e-30)


@settings(max_examples=100, deadline=None, database=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 6)), elements=CLASS_LOGITS)
)
def test_log_softmax_accurate_for_dominant_class(logits):
    ours = log_softmax_accurate(torch.tensor(logits)).numpy()
    with mpmath.workdps(20):
        np.testing.assert_allclose(ours, log_softmax(logits), rtol=1e-12, atol=0)


def test_log_softmax_gradient_matches_torch():
    logits = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(5, 7, dtype=torch.float64)
    (grad_ours,) = torch.autograd.grad((log_softmax_accurate(logits) * weights).sum(), logits)
    (grad_torch,) = torch.autograd.grad((torch.log_softmax(logits, -1) * weights).sum(), logits)
    torch.testing.assert_close(grad_ours, grad_torch)


def test_a_tail_shared_between_counts_or_no_cutoff_is_refused():
    """A tail of a smaller batch shape would draw one tail value for all the counts sharing
    it; a single class leaves no tail."""
    with pytest.raises(ValueError, match="batch shape"):
        PiecewiseCategorical(Poisson(torch.zeros(1)), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="cutoff"):
        PiecewiseCategorical(Poisson(torch.zeros(4)), torch.zeros(4, 1))
