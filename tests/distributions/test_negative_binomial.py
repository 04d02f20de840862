"""Negative binomial: exact log-pmf against mpmath and scipy, float32 robustness, scvi interop."""

import math

import numpy as np
import pytest
import scvi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from scvae.distributions import NegativeBinomial, ZeroInflatedNegativeBinomial
from scvae.distributions._negative_binomial_log_prob import MAX_LOG_THETA, MIN_LOG_THETA
from tests.distributions._distribution_references import (
    COUNTS,
    LOG_RATES,
    LOG_THETAS,
    assert_float32_close,
    columns,
    float32_log_prob_and_grads,
    nb_logpmf,
    term_magnitude,
)

SETTINGS = settings(max_examples=150, deadline=None, database=None)


@SETTINGS
@given(columns(COUNTS, LOG_RATES, LOG_THETAS))
def test_log_prob_matches_mpmath_float64(data):
    x, log_mu, log_theta = data
    distribution = NegativeBinomial(torch.tensor(log_mu), torch.tensor(log_theta))
    ours = distribution.log_prob(torch.tensor(x)).numpy()
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, nb_logpmf(x, log_mu, log_theta), rtol=1e-5, atol=0)


@settings(max_examples=100, deadline=None, database=None)
@given(
    columns(
        st.integers(0, 1000).map(float),
        st.floats(math.log(1e-2), math.log(1e3)),
        st.floats(math.log(1e-2), math.log(1e3)),
    )
)
def test_log_prob_matches_scipy_where_scipy_is_accurate(data):
    x, log_mu, log_theta = data
    mu, theta = np.exp(log_mu), np.exp(log_theta)
    ours = NegativeBinomial(torch.tensor(log_mu), torch.tensor(log_theta)).log_prob(torch.tensor(x))
    reference = stats.nbinom.logpmf(x, theta, theta / (theta + mu))
    np.testing.assert_allclose(ours.numpy(), reference, rtol=1e-5, atol=0)


@SETTINGS
@given(columns(COUNTS, LOG_RATES, LOG_THETAS))
def test_float32_finite_with_finite_gradients(data):
    x, log_mu, log_theta = data
    ours, grads = float32_log_prob_and_grads(NegativeBinomial, [log_mu, log_theta], x)
    assert all(np.all(np.isfinite(g)) for g in grads)
    reference = nb_logpmf(x, log_mu, log_theta)
    assert_float32_close(ours, reference, term_magnitude(x, log_mu, log_theta))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("log_theta", [88.0, 89.0, 200.0, 1e4])
def test_inverse_dispersion_past_float_overflow_is_the_poisson_limit(dtype, log_theta):
    # exp(log_theta) overflows float32 above 88.7 (float64 above 709.8): the log-pmf and its
    # gradients must stay those of the Poisson of the same mean, not -inf or NaN.
    x = torch.tensor([[0.0, 1.0, 5.0, 300.0]], dtype=dtype)
    log_mu = torch.tensor([[-3.0, 0.5, 2.0, 5.5]], dtype=dtype, requires_grad=True)
    log_thetas = torch.full((4,), log_theta, dtype=dtype, requires_grad=True)
    poisson = torch.distributions.Poisson(log_mu.detach().exp()).log_prob(x)
    # x log(theta) cancels between the terms: a rounding error of x * MAX_LOG_THETA * eps.
    tolerance = 4 * torch.finfo(dtype).eps * (1 + x * MAX_LOG_THETA)
    for distribution in (
        NegativeBinomial(log_mu, log_thetas),
        ZeroInflatedNegativeBinomial(log_mu, log_thetas, torch.full_like(log_mu, -40.0)),
    ):
        log_prob = distribution.log_prob(x)
        assert torch.all((log_prob.detach() - poisson).abs() <= tolerance)
        for counts in (x, x.to_sparse_csr()):  # the summed kernel, dense and sparse
            summed = distribution.log_prob_sum(counts).detach()
            assert torch.allclose(summed, poisson.sum(-1), rtol=0, atol=float(tolerance.sum()))
        grad_mu, grad_theta = torch.autograd.grad(log_prob.sum(), (log_mu, log_thetas))
        torch.testing.assert_close(grad_mu, x - log_mu.detach().exp(), rtol=1e-4, atol=1e-4)
        assert torch.all(torch.isfinite(grad_theta))
    torch.manual_seed(0)
    draws = NegativeBinomial(log_mu.detach(), log_thetas.detach()).sample((2000,))
    assert torch.all(torch.isfinite(draws))
    torch.testing.assert_close(
        draws.mean(0), log_mu.detach().exp(), rtol=0.05, atol=0.02, check_dtype=False
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("log_theta", [-89.0, -200.0, -1e4])
def test_inverse_dispersion_below_float_range_is_read_as_the_smallest(dtype, log_theta):
    # x / theta overflows float32 once log(theta) < log(x) - 88.7: the log-pmf and its
    # gradients must stay finite, those of theta = exp(MIN_LOG_THETA).
    x = torch.tensor([[0.0, 1.0, 5.0, 1e5, 1e6]], dtype=dtype)
    log_mu = torch.zeros_like(x, requires_grad=True)
    log_thetas = torch.full((5,), log_theta, dtype=dtype, requires_grad=True)
    for distribution in (
        NegativeBinomial(log_mu, log_thetas),
        ZeroInflatedNegativeBinomial(log_mu, log_thetas, torch.full_like(x, -40.0)),
    ):
        log_prob = distribution.log_prob(x)
        grads = torch.autograd.grad(log_prob.sum(), (log_mu, log_thetas))
        assert all(torch.all(torch.isfinite(grad)) for grad in grads)
        theta = math.exp(MIN_LOG_THETA)
        reference = stats.nbinom.logpmf(x.double().numpy(), theta, theta / (theta + 1.0))
        tolerance = 4 * torch.finfo(dtype).eps * (1 + x.double().numpy() * -MIN_LOG_THETA)
        np.testing.assert_array_less(
            np.abs(log_prob.detach().double().numpy() - reference), tolerance
        )
        summed = distribution.log_prob_sum(x.to_sparse_csr()).detach()
        torch.testing.assert_close(summed, log_prob.detach().sum(-1))


@pytest.mark.parametrize(
    ("mean", "log_theta"),
    [(1000.0, 6.9), (1000.0, 12.0), (1000.0, 18.4), (100.0, 16.0), (0.5, 18.4)],  # 0.5: zeros
)
@pytest.mark.parametrize(
    "path", ["log_prob", "dense sum", "sparse sum", "per-cell theta", "one theta", "zinb"]
)
def test_float32_dispersion_gradient_of_a_nearly_poisson_gene(mean, log_theta, path):
    # The gradient in log(theta) is about mu^2 / theta per cell while its terms are about mu:
    # formed from those terms, float32 gave rounding noise, often of the wrong sign.
    generator = torch.Generator().manual_seed(0)
    mu = mean * torch.exp(0.3 * torch.randn(512, 1, generator=generator, dtype=torch.float64))
    counts = torch.poisson(mu, generator=generator)
    grads = {}
    for dtype in (torch.float32, torch.float64):
        log_mu = mu.log().to(dtype)
        shape = {"per-cell theta": (512, 1), "one theta": ()}.get(path, (1,))
        log_thetas = torch.full(shape, log_theta, dtype=dtype, requires_grad=True)
        distribution, x = NegativeBinomial(log_mu, log_thetas), counts.to(dtype)
        if path == "zinb":  # zero-inflation all but off: the NB's gradient at the zeros too
            zinb = ZeroInflatedNegativeBinomial(log_mu, log_thetas, torch.full_like(log_mu, -40.0))
            total = zinb.log_prob(x).sum()
        elif path == "log_prob":
            total = distribution.log_prob(x).sum()
        else:
            total = distribution.log_prob_sum(
                x.to_sparse_csr() if path == "sparse sum" else x
            ).sum()
        grads[dtype] = torch.autograd.grad(total, log_thetas)[0].double().sum()
    torch.testing.assert_close(grads[torch.float32], grads[torch.float64], rtol=0.02, atol=0)


@pytest.mark.parametrize("sparse", [False, True])
def test_half_precision_means_under_autocast_give_the_float32_log_likelihood(sparse):
    """As a decoder trained with precision="bf16-mixed" hands them over."""
    generator = torch.Generator().manual_seed(0)
    log_mu = torch.randn(64, 30, generator=generator)
    counts = torch.poisson(log_mu.exp(), generator=generator)
    x = counts.to_sparse_csr() if sparse else counts
    log_theta = torch.zeros(30, requires_grad=True)
    expected = NegativeBinomial(log_mu.bfloat16().float(), log_theta).log_prob_sum(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total = NegativeBinomial(log_mu.bfloat16(), log_theta).log_prob_sum(x)
    assert total.dtype == torch.float32
    torch.testing.assert_close(total, expected)
    total.sum().backward()
    assert torch.isfinite(log_theta.grad).all()


def test_exact_where_scvi_eps_is_not():
    # mu = 1e-8, theta = 1: p(1) ~ 1e-8; scvi's log_nb_positive adds eps = 1e-8 inside the log.
    log_mu = torch.tensor([math.log(1e-8)], dtype=torch.float64)
    log_theta = torch.zeros(1, dtype=torch.float64)
    x = torch.ones(1, dtype=torch.float64)
    ours = NegativeBinomial(log_mu, log_theta).log_prob(x).item()
    reference = nb_logpmf(np.ones(1), log_mu.numpy(), log_theta.numpy())[0]
    assert abs(ours - reference) < 1e-12 * abs(reference)
    scvi_value = scvi.distributions.NegativeBinomial(mu=log_mu.exp(), theta=log_theta.exp())
    assert abs(scvi_value.log_prob(x).item() - reference) > 0.5  # off by ~log(2)


def test_is_an_scvi_negative_binomial():
    log_mu = torch.randn(3, 4, dtype=torch.float64)
    log_theta = torch.randn(4, dtype=torch.float64)
    distribution = NegativeBinomial(log_mu, log_theta)
    assert isinstance(distribution, scvi.distributions.NegativeBinomial)
    assert distribution.batch_shape == (3, 4)
    torch.testing.assert_close(distribution.mu, log_mu.exp())
    torch.testing.assert_close(distribution.theta, log_theta.exp().expand(3, 4))
    mu, theta = distribution.mu, distribution.theta
    torch.testing.assert_close(distribution.variance, mu + mu**2 / theta)
    torch.testing.assert_close(distribution.get_normalized("mu"), mu)
    torch.testing.assert_close(distribution.get_normalized("scale"), mu / mu.sum(-1, keepdim=True))
    counts = torch.poisson(mu)
    scvi_log_prob = scvi.distributions.NegativeBinomial(mu=mu, theta=theta).log_prob(counts)
    torch.testing.assert_close(distribution.log_prob(counts), scvi_log_prob, rtol=1e-6, atol=1e-6)
    samples = NegativeBinomial(log_mu.expand(5, 3, 4), log_theta).sample((2,))
    assert samples.shape == (2, 5, 3, 4)


@pytest.mark.parametrize("zero_inflated", [False, True])
def test_given_log_scale_and_argument_validation(zero_inflated):
    log_mu, log_theta = torch.randn(2, 3, 4), torch.randn(4)
    extra = (torch.randn(2, 3, 4),) if zero_inflated else ()
    distribution_class = ZeroInflatedNegativeBinomial if zero_inflated else NegativeBinomial
    log_scale = torch.log_softmax(torch.randn(2, 3, 4), -1)
    distribution = distribution_class(log_mu, log_theta, *extra, log_scale=log_scale)
    torch.testing.assert_close(distribution.get_normalized("scale"), log_scale.exp())
    assert distribution.theta.shape == distribution.mu.shape == (2, 3, 4)
    bad_log_mu = log_mu.clone()
    bad_log_mu[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="log_mu"):
        distribution_class(bad_log_mu, log_theta, *extra, validate_args=True)
    with pytest.raises(ValueError, match="support"):
        distribution_class(log_mu, log_theta, *extra, validate_args=True).log_prob(
            torch.full((3, 4), -1.0)
        )


def _plain_log_prob(x, log_mu, log_theta):
    """The NB log-pmf term by term, differentiated by autograd."""
    theta = log_theta.exp()
    return (
        torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1)
        - theta * torch.nn.functional.softplus(log_mu - log_theta)
        - x * torch.nn.functional.softplus(log_theta - log_mu)
    )


@pytest.mark.parametrize(
    ("counts_shape", "log_mu_shape", "log_theta_shape"),
    [
        ((6, 5), (6, 5), (5,)),  # a VAE minibatch, per-gene dispersion
        ((6, 5), (3, 6, 5), (5,)),  # GMVAE components broadcast over the counts
        ((6, 5), (3, 6, 5), (3, 6, 5)),  # GMVAE with a per-cell dispersion
        ((4, 1, 1), (6, 5), (5,)),  # a grid of counts against one set of parameters
    ],
)
def test_values_and_gradients_are_those_of_the_plain_formula(
    counts_shape, log_mu_shape, log_theta_shape
):
    generator = torch.Generator().manual_seed(0)
    counts = torch.poisson(torch.full(counts_shape, 0.7), generator=generator).double()
    log_mu = torch.randn(log_mu_shape, dtype=torch.float64, generator=generator)
    log_theta = torch.randn(log_theta_shape, dtype=torch.float64, generator=generator)
    log_mu.requires_grad_()
    log_theta.requires_grad_()
    ours = NegativeBinomial(log_mu, log_theta).log_prob(counts)
    plain = _plain_log_prob(counts, log_mu, log_theta)
    torch.testing.assert_close(ours, plain)
    weights = torch.randn(ours.shape, dtype=torch.float64, generator=generator)
    torch.testing.assert_close(
        torch.autograd.grad((ours * weights).sum(), [log_mu, log_theta]),
        torch.autograd.grad((plain * weights).sum(), [log_mu, log_theta]),
    )
    torch.autograd.gradcheck(
        lambda mu, theta: NegativeBinomial(mu, theta).log_prob(counts), (log_mu, log_theta)
    )


def test_parameters_that_are_views_of_other_tensors():
    log_mu = torch.randn(5, 6, dtype=torch.float64).T  # not contiguous
    log_theta = torch.randn(5, dtype=torch.float64)
    counts = torch.poisson(torch.full((6, 5), 1.0)).double()
    torch.testing.assert_close(
        NegativeBinomial(log_mu, log_theta).log_prob(counts),
        _plain_log_prob(counts, log_mu, log_theta),
    )


def test_broadcast_shape_agrees_with_torch():
    from scvae.distributions._negative_binomial_log_prob import broadcast_shape

    for shapes in [((6, 5), (5,)), ((6, 5), (3, 6, 5)), ((4, 1, 1), (6, 5)), ((0, 5), (1, 5))]:
        assert broadcast_shape(*shapes) == torch.broadcast_shapes(*shapes)
    with pytest.raises(RuntimeError, match="broadcast"):
        broadcast_shape((2, 3), (4, 3))


@pytest.mark.parametrize(
    ("log_mu_shape", "log_theta_shape"),
    [((6, 5), (5,)), ((3, 6, 5), (5,)), ((3, 6, 5), (3, 6, 5)), ((2, 3, 6, 5), (6, 5))],
)
def test_sparse_counts_give_the_dense_values_and_gradients(log_mu_shape, log_theta_shape):
    generator = torch.Generator().manual_seed(0)
    counts = torch.poisson(torch.full((6, 5), 0.7), generator=generator).double()
    counts[1] = 0.0  # an empty cell
    sparse = counts.to_sparse_csr()
    log_mu = torch.randn(log_mu_shape, dtype=torch.float64, generator=generator)
    log_theta = torch.randn(log_theta_shape, dtype=torch.float64, generator=generator)
    log_mu.requires_grad_()
    log_theta.requires_grad_()
    results = []
    for value in (sparse, counts):
        log_prob = NegativeBinomial(log_mu, log_theta).log_prob(value)
        results.append((log_prob, *torch.autograd.grad(log_prob.sum(), [log_mu, log_theta])))
    for from_sparse, from_dense in zip(*results, strict=True):
        torch.testing.assert_close(from_sparse, from_dense)


def test_sparse_counts_that_broadcast_are_densified():
    counts = torch.tensor([[0.0, 2.0, 1.0]]).to_sparse_csr()  # one row against four cells
    log_mu, log_theta = torch.randn(4, 3), torch.randn(3)
    torch.testing.assert_close(
        NegativeBinomial(log_mu, log_theta).log_prob(counts),
        NegativeBinomial(log_mu, log_theta).log_prob(counts.to_dense()),
    )


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    ("counts_shape", "log_mu_shape", "log_theta_shape"),
    [
        ((6, 5), (6, 5), (5,)),  # a VAE minibatch, per-gene dispersion
        ((6, 5), (3, 6, 5), (5,)),  # GMVAE components broadcast over the counts
        ((6, 5), (3, 6, 5), (3, 6, 5)),  # per-cell dispersion
        ((6, 5), (6, 5), (6, 5)),  # per-batch dispersion, looked up per cell
        ((5,), (6, 5), (5,)),  # one cell's counts against several means
        ((6, 5), (6, 5), (1,)),  # one dispersion for all genes
    ],
)
@pytest.mark.parametrize("all_zero", [False, True])
def test_log_prob_sum_is_the_sum_over_genes(
    counts_shape, log_mu_shape, log_theta_shape, sparse, all_zero
):
    if sparse and len(counts_shape) != 2:
        pytest.skip("sparse CSR counts are (cells, genes) matrices")
    generator = torch.Generator().manual_seed(0)
    counts = torch.poisson(torch.full(counts_shape, 0.7), generator=generator).double()
    if all_zero:  # no non-zero count at all
        counts.zero_()
    log_mu = torch.randn(log_mu_shape, dtype=torch.float64, generator=generator)
    log_theta = torch.randn(log_theta_shape, dtype=torch.float64, generator=generator)
    log_mu.requires_grad_()
    log_theta.requires_grad_()
    distribution = NegativeBinomial(log_mu, log_theta)
    summed = distribution.log_prob_sum(counts.to_sparse_csr() if sparse else counts)
    reference = distribution.log_prob(counts).sum(-1)
    torch.testing.assert_close(summed, reference)
    weights = torch.randn(summed.shape, dtype=torch.float64, generator=generator)
    torch.testing.assert_close(
        torch.autograd.grad((summed * weights).sum(), [log_mu, log_theta]),
        torch.autograd.grad((reference * weights).sum(), [log_mu, log_theta]),
    )


@pytest.mark.parametrize("zero_inflated", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.int64])
def test_counts_of_another_dtype_than_the_parameters(zero_inflated, dtype):
    """float64 counts (``torch.from_numpy``; they crashed the kernel) or integer ones with
    float32 parameters give the float32 values."""
    log_mu, log_theta = torch.randn(2, 3), torch.zeros(3)
    args = (log_mu, log_theta, torch.zeros(2, 3)) if zero_inflated else (log_mu, log_theta)
    cls = ZeroInflatedNegativeBinomial if zero_inflated else NegativeBinomial
    counts = torch.tensor([[0, 1, 5], [2, 0, 0]])
    distribution = cls(*args)
    expected = distribution.log_prob(counts.float())
    torch.testing.assert_close(distribution.log_prob(counts.to(dtype)), expected)
    torch.testing.assert_close(distribution.log_prob_sum(counts.to(dtype)), expected.sum(-1))
