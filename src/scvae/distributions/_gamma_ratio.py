r"""Differences of log-gamma and digamma functions, :math:`f(\theta + x) - f(\theta)`, without
cancellation.

The negative binomial log-pmf needs :math:`\log\Gamma(\theta + x) - \log\Gamma(\theta)`
and its gradient :math:`\theta[\psi(\theta + x) - \psi(\theta)] - x`. Subtracting two
``torch.lgamma`` values loses the difference once :math:`\theta \gg x`: at
:math:`\theta = 10^5` each term is about :math:`10^6`, whose float32 spacing is 0.06, while
the difference is about
:math:`x \log\theta \approx 12`. Nearly Poisson genes get such dispersions. Here the
differences are evaluated directly from Stirling's series, after shifting the arguments up by
:math:`s` (:func:`shift`) with the recurrences :math:`\Gamma(t + 1) = t\,\Gamma(t)` and
:math:`\psi(t + 1) = \psi(t) + 1/t`, so that every term is of the size of the result.

The functions run at every non-zero count of a minibatch, where each torch operation costs
little arithmetic and a fixed dispatch overhead; so the :math:`s` shifted arguments are
handled as the rows of one tensor, and the quantities both differences need are computed once
(:func:`gamma_ratio_terms`) and shared between a forward pass and its backward pass.
"""

from typing import NamedTuple

import torch
from torch import Tensor

#: Coefficients of Stirling's correction :math:`\delta(t) = \sum_n c_n t^{1-2n}` and of
#: :math:`g(t) = \log t - \psi(t) - \frac{1}{2t} = \sum_n d_n t^{-2n}`, :math:`n \ge 1`
#: (:math:`c_n = B_{2n} / (2n(2n-1))`, :math:`d_n = B_{2n} / 2n`, Bernoulli numbers :math:`B`).
STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360)
DIGAMMA = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760)


def shift(dtype: torch.dtype) -> tuple[int, int]:
    r"""How far arguments are shifted up, and how many series terms are then used.

    At :math:`t > 5` the first omitted terms of four are below 1e-9, under float32 rounding;
    float64 takes six terms at :math:`t > 12` (below 1e-16).
    """
    return (12, 6) if dtype == torch.float64 else (5, 4)


class GammaRatioTerms(NamedTuple):
    r"""Quantities shared by :func:`log_gamma_ratio` and :func:`digamma_excess`.

    With :math:`s` from :func:`shift`, rows :math:`i = 0, \dots, s` hold
    :math:`\theta + i` (``shifted``), :math:`x / (\theta + i)` (``ratios``) and their
    ``log1p`` (``log1p_ratios``); row :math:`s` is :math:`u = \theta + s`. ``reciprocals``
    stacks :math:`1/v` and :math:`1/u` for :math:`v = u + x`.
    """

    shifted: Tensor
    ratios: Tensor
    log1p_ratios: Tensor
    reciprocals: Tensor


def gamma_ratio_terms(x: Tensor, theta: Tensor) -> GammaRatioTerms:
    """The shared quantities of the differences at counts ``x`` and dispersions ``theta``."""
    s, _ = shift(theta.dtype)
    offsets = torch.arange(s + 1, dtype=theta.dtype, device=theta.device)
    shifted = theta + offsets.view(-1, *[1] * theta.dim())
    ratios = x / shifted
    u = shifted[s]
    v = u + x  # of the broadcast shape of x and theta
    reciprocals = torch.stack((v, u.expand_as(v))).reciprocal_()
    return GammaRatioTerms(shifted, ratios, torch.log1p(ratios), reciprocals)


def log_gamma_ratio(x: Tensor, theta: Tensor, terms: GammaRatioTerms | None = None) -> Tensor:
    r""":math:`\log\Gamma(\theta + x) - \log\Gamma(\theta)` for :math:`\theta > 0`, :math:`x \ge 0`.

    With :math:`u = \theta + s` and :math:`v = u + x`, Stirling's series
    :math:`\log\Gamma(t) = (t - \tfrac12)\log t - t + \tfrac12\log 2\pi + \delta(t)` gives

    .. math::

        \log\Gamma(v) - \log\Gamma(u) = (v - \tfrac12)\operatorname{log1p}(x/u)
            + x(\log u - 1) + \delta(v) - \delta(u),

    and :math:`\log\Gamma(\theta + x) - \log\Gamma(\theta) = \log\Gamma(v) - \log\Gamma(u)
    - \sum_{i<s} \operatorname{log1p}\!\big(x / (\theta + i)\big)`. Exact (zero) at
    :math:`x = 0`. ``terms`` from :func:`gamma_ratio_terms`, if already computed.
    """
    s, n_terms = shift(theta.dtype)
    if terms is None:
        terms = gamma_ratio_terms(x, theta)
    u, log1p_ratio = terms.shifted[s], terms.log1p_ratios[s]
    corrections = _series(terms.reciprocals, STIRLING[:n_terms], odd=True)
    out = (u + x - 0.5) * log1p_ratio + x * (torch.log(u) - 1)
    return out + (corrections[0] - corrections[1]) - terms.log1p_ratios[:s].sum(0)


def digamma_excess(x: Tensor, theta: Tensor, terms: GammaRatioTerms | None = None) -> Tensor:
    r""":math:`\theta\,[\psi(\theta + x) - \psi(\theta)] - x` for :math:`\theta > 0`,
    :math:`x \ge 0`: the part of the negative binomial's gradient in :math:`\log\theta` that
    the counts bring.

    Its two terms are each about :math:`x` while their difference is about
    :math:`-x(x - 1) / 2\theta` for a nearly Poisson gene (:math:`\theta \gg x`), lost to
    rounding if they are subtracted. With :math:`u`, :math:`v` as in :func:`log_gamma_ratio`,
    :math:`r = x/u`, the asymptotic series :math:`\psi(t) = \log t - \frac{1}{2t} - g(t)`
    and :math:`\theta \operatorname{log1p}(r) - x = \theta(\operatorname{log1p}(r) - r) - s r`,

    .. math::

        \theta\Big[\operatorname{log1p}(r) - r + \frac{x}{2uv} + g(u) - g(v)
            + \sum_{i<s} \frac{x}{(\theta + i)(\theta + i + x)}\Big] - s r,

    with :math:`\operatorname{log1p}(r) - r` from its power series where :math:`r` is small
    (:func:`log1p_minus_identity`). Exact (zero) at :math:`x = 0`.
    """
    s, n_terms = shift(theta.dtype)
    if terms is None:
        terms = gamma_ratio_terms(x, theta)
    corrections = _series(terms.reciprocals, DIGAMMA[:n_terms])
    reciprocal_v, reciprocal_u = terms.reciprocals
    r = terms.ratios[s]
    out = log1p_minus_identity(r, terms.log1p_ratios[s]) + 0.5 * x * reciprocal_u * reciprocal_v
    out = out + (corrections[1] - corrections[0])
    out = out + (terms.ratios[:s] / (terms.shifted[:s] + x)).sum(0)
    return theta * out - s * r


def log1p_minus_identity(r: Tensor, log1p_r: Tensor) -> Tensor:
    r""":math:`\operatorname{log1p}(r) - r = \sum_{n \ge 2} (-1)^{n+1} r^n / n` for
    :math:`r \ge 0`, given ``log1p_r``; from the series where :math:`r` is small
    (:data:`SMALL`), where the difference of the two would be mostly rounding."""
    coefficients = [(-1) ** (n + 1) / n for n in range(2, _highest_power(r.dtype) + 1)]
    return _series_where_small(r, _from_square(r.clamp(max=SMALL), coefficients), log1p_r - r)


def softplus_minus_sigmoid(softplus_a: Tensor, sigmoid_a: Tensor) -> Tensor:
    r""":math:`\operatorname{softplus}(a) - \sigma(a) = -\log(1 - p) - p = \sum_{n \ge 2}
    p^n / n` with :math:`p = \sigma(a)`, given both; from the series where :math:`p` is small
    (:data:`SMALL`), where the difference of the two would be mostly rounding."""
    coefficients = [1 / n for n in range(2, _highest_power(sigmoid_a.dtype) + 1)]
    series = _from_square(sigmoid_a.clamp(max=SMALL), coefficients)
    return _series_where_small(sigmoid_a, series, softplus_a - sigmoid_a)


#: The series above are used below this argument; above it, the differences lose at most
#: :math:`2\epsilon / 0.1` of their precision.
SMALL = 0.1


def _highest_power(dtype: torch.dtype) -> int:
    """Highest power of the series above: below :data:`SMALL`, the first omitted term is
    under float32 (float64) rounding of the result."""
    return 17 if dtype == torch.float64 else 8


def _series_where_small(argument: Tensor, series: Tensor, direct: Tensor) -> Tensor:
    """``series`` where ``argument`` is below :data:`SMALL`, else ``direct`` (in place; both
    finite). Arithmetic, as comparisons and ``torch.where`` cost several times more on a CPU
    and this runs on every entry of a minibatch; ``lerp`` returns either end exactly."""
    weight = (SMALL - argument).sign_().add_(1).mul_(0.5)  # 1 below SMALL, 0 above
    return direct.lerp_(series, weight)


def _from_square(y: Tensor, coefficients: list[float]) -> Tensor:
    """:math:`\\sum_k c_k y^{k + 2}` by Horner's rule, one fused multiply-add per term."""
    out = torch.full_like(y, coefficients[-1])
    for coefficient in reversed(coefficients[:-1]):
        torch.addcmul(out.new_full((), coefficient), out, y, out=out)
    return out.mul_(y.square())


def _series(reciprocal: Tensor, coefficients: tuple[float, ...], odd: bool = False) -> Tensor:
    r""":math:`\sum_n c_n t^{-2n}` (times :math:`t` if ``odd``: odd powers) at
    :math:`t = 1 / \text{reciprocal}`, by Horner's rule."""
    r2 = reciprocal.square()
    out = r2 * coefficients[-1] + coefficients[-2]
    for coefficient in reversed(coefficients[:-2]):
        out.mul_(r2).add_(coefficient)
    return out.mul_(reciprocal if odd else r2)
