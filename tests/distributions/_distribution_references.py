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
