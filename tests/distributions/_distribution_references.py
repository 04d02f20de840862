"""Independent float64 / mpmath references and hypothesis strategies for the likelihood tests.

Nothing here imports scvae: the references are written from the textbook pmfs.
"""

import math

import mpmath
import numpy as np
from hypothesis import strategies as st
from scipy import special, stats

LOG_RATES = st.floats(math.log(1e-8), math.log(1e6))  # rates 1e-8 .. 1e6, log-uniform
LOG_THETAS = st.floats(math.log(1e-4), math.log(1e4))  # inverse dispersion 1e-4 .. 1e4
ZI_LOGITS = st.floats(-30.0, 30.0)
COUNTS = st.one_of(
    st.just(0.0),
    st.integers(0, 20).map(float),
    st.integers(0, 100_000).map(float),
)
MPMATH_DIGITS = 40


def columns(*strategies: st.SearchStrategy, max_size: int = 8) -> st.SearchStrategy:
    """Lists of tuples drawn from ``strategies``, returned as one float64 array per position."""
    rows = st.lists(st.tuples(*strategies), min_size=1, max_size=max_size)
    return rows.map(lambda r: tuple(np.array(c, dtype=np.float64) for c in zip(*r, strict=True)))


def poisson_logpmf(x: np.ndarray, log_rate: np.ndarray) -> np.ndarray:
    """scipy's Poisson log-pmf."""
    return stats.poisson.logpmf(x, np.exp(log_rate))


def _mp_nb_logpmf(x: float, log_mu: float, log_theta: float) -> mpmath.mpf:
    x, mu, theta = mpmath.mpf(x), mpmath.exp(log_mu), mpmath.exp(log_theta)
    return (
        mpmath.loggamma(x + theta)
        - mpmath.loggamma(theta)
        - mpmath.loggamma(x + 1)
        + theta * mpmath.log(theta / (theta + mu))
        + x * mpmath.log(mu / (theta + mu))
    )


def nb_logpmf(x: np.ndarray, log_mu: np.ndarray, log_theta: np.ndarray) -> np.ndarray:
    """Negative binomial log-pmf with 40-digit mpmath.

    ``scipy.stats.nbinom.logpmf(x, theta, theta / (theta + mu))`` is not usable as the reference
    in the extreme corners: it evaluates ``log(p)`` and ``log1p(-p)`` with ``p`` rounded to
    float64, e.g. for mu = 1e-8, theta = 1e4 ``1 - p = 1e-12`` keeps only ~4 correct digits.
    """
    with mpmath.workdps(MPMATH_DIGITS):
        return np.array(
            [float(_mp_nb_logpmf(*args)) for args in np.broadcast(x, log_mu, log_theta)]
        ).reshape(np.broadcast_shapes(np.shape(x), np.shape(log_mu), np.shape(log_theta)))


def zip_logpmf(x: np.ndarray, log_rate: np.ndarray, zi_logits: np.ndarray) -> np.ndarray:
    """Zero-inflated Poisson: a two-term float64 log-sum-exp of the zero's two sources."""
    log_pi = -np.logaddexp(0.0, -zi_logits)  # log sigmoid(eta)
    log_one_minus_pi = -np.logaddexp(0.0, zi_logits)  # log sigmoid(-eta)
    log_poisson = stats.poisson.logpmf(x, np.exp(log_rate))
    log_zero = special.logsumexp(np.stack([log_pi, log_one_minus_pi - np.exp(log_rate)]), axis=0)
    return np.where(x == 0, log_zero, log_one_minus_pi + log_poisson)


def zinb_logpmf(
    x: np.ndarray, log_mu: np.ndarray, log_theta: np.ndarray, zi_logits: np.ndarray
) -> np.ndarray:
    """Zero-inflated negative binomial with 40-digit mpmath."""
    out = []
    with mpmath.workdps(MPMATH_DIGITS):
        for xi, lm, lt, eta in np.broadcast(x, log_mu, log_theta, zi_logits):
            pi = 1 / (1 + mpmath.exp(-mpmath.mpf(eta)))
            log_nb = _mp_nb_logpmf(xi, lm, lt)
            if xi == 0:
                out.append(float(mpmath.log(pi + (1 - pi) * mpmath.exp(log_nb))))
            else:
                out.append(float(mpmath.log(1 - pi) + log_nb))
    return np.array(out).reshape(
        np.broadcast_shapes(*(np.shape(a) for a in (x, log_mu, zi_logits)))
    )


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis with 40-digit mpmath (exact also for a dominant class)."""
    flat = logits.reshape(-1, logits.shape[-1])
    out = np.empty_like(flat)
    with mpmath.workdps(MPMATH_DIGITS):
        for i, row in enumerate(flat):
            log_norm = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in row))
            out[i] = [float(mpmath.mpf(v) - log_norm) for v in row]
    return out.reshape(logits.shape)


def piecewise_logpmf(
    x: np.ndarray, class_logits: np.ndarray, base_logpmf: np.ndarray
) -> np.ndarray:
    """Piecewise categorical: ``log p_x`` below the cutoff, ``log p_k + base(x - k)`` above.

    ``base_logpmf`` must already be evaluated at ``max(x - k, 0)``.
    """
    k = class_logits.shape[-1] - 1
    log_p = log_softmax(class_logits)
    head = np.take_along_axis(log_p, np.minimum(x, k).astype(int)[..., None], -1)[..., 0]
    return np.where(x < k, head, log_p[..., k] + base_logpmf)


def poisson_logpmf_gammaln(x: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Textbook Poisson log-pmf with ``special.gammaln`` (for rates given directly)."""
    return special.xlogy(x, rate) - rate - special.gammaln(x + 1)


FLOAT32_ULPS = 16
"""Float32 tolerance, in units of float32 eps times the magnitude of the summed terms.

Measured (4000 draws over the test ranges, counts up to 1e5, half of them near the mean): the
float32 error of log_prob is at most 4.5 (Poisson), 0.8 (NB), 4.8 (ZIP) and 1.0 (ZINB) times
``eps32 * term_magnitude`` (below): the rounding of the large terms themselves
(x log(rate), lgamma(x + 1) ~ 1e6 for x ~ 1e5). In absolute terms up to 0.46 nats, i.e. up to
~1.6% relative error for a log-likelihood near its mode (~ -7); float64 is within 3e-10.
"""


def term_magnitude(
    x: np.ndarray,
    log_mu: np.ndarray,
    log_theta: np.ndarray | None = None,
    zi_logits: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of the magnitudes of the terms whose float32 rounding dominates the error."""
    mu = np.exp(log_mu)
    out = np.abs(x * log_mu) + mu + special.gammaln(x + 1) + 1.0
    if log_theta is not None:
        theta = np.exp(log_theta)
        out = out + special.gammaln(x + theta) + np.abs(special.gammaln(theta))
        out = out + theta * np.logaddexp(0, log_mu - log_theta) + np.abs(x * log_theta)
    if zi_logits is not None:
        out = out + np.logaddexp(0, zi_logits)
    return out


def float32_log_prob_and_grads(factory, params: list[np.ndarray], x: np.ndarray):
    """Evaluate ``factory(*params).log_prob(x)`` in float32 and backpropagate its sum.

    Returns the log-probabilities (as float64 numpy) and the parameters' gradients.
    """
    import torch

    leaves = [torch.tensor(p, dtype=torch.float32, requires_grad=True) for p in params]
    log_prob = factory(*leaves).log_prob(torch.tensor(x, dtype=torch.float32))
    log_prob.sum().backward()
    return log_prob.detach().double().numpy(), [leaf.grad.numpy() for leaf in leaves]


def assert_float32_close(actual: np.ndarray, reference: np.ndarray, magnitude: np.ndarray):
    """``|actual - reference| <= FLOAT32_ULPS * eps32 * magnitude`` (see ``FLOAT32_ULPS``)."""
    assert np.all(np.isfinite(actual))
    bound = FLOAT32_ULPS * np.finfo(np.float32).eps * magnitude
    error = np.abs(actual - reference)
    assert np.all(error <= bound), (error / bound).max()
