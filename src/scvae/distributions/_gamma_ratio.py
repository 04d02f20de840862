r"""Differences of log-gamma and digamma functions, :math:`f(\theta + x) - f(\theta)`, without
cancellation.

The negative binomial log-pmf needs :math:`\log\Gamma(\theta + x) - \log\Gamma(\theta)` and its
gradient :math:`\psi(\theta + x) - \psi(\theta)`. Subtracting two ``torch.lgamma`` values loses
the difference once :math:`\theta \gg x`: at :math:`\theta = 10^5` each term is about
:math:`10^6`, whose float32 spacing is 0.06, while the difference is about
:math:`x \log\theta \approx 12`. Nearly Poisson genes get such dispersions. Here the
differences are evaluated directly from Stirling's series, after shifting the arguments up by
:func:`shift` with the recurrences :math:`\Gamma(t + 1) = t\,\Gamma(t)` and
:math:`\psi(t + 1) = \psi(t) + 1/t`, so that every term is of the size of the result.
"""

import torch
from torch import Tensor

#: Coefficients of Stirling's correction :math:`\delta(t) = \sum_n c_n t^{1-2n}` and of
#: :math:`g(t) = \log t - \psi(t) - \frac{1}{2t} = \sum_n d_n t^{-2n}`, :math:`n \ge 1`
#: (:math:`c_n = B_{2n} / (2n(2n-1))`, :math:`d_n = B_{2n} / 2n`, Bernoulli numbers :math:`B`).
STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360)
DIGAMMA = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760)


def shift(dtype: torch.dtype) -> int:
    r"""How far arguments are shifted up before the series are used.

    At :math:`t \ge 3` the first omitted terms are below 2e-8, under float32 rounding; float64
    needs :math:`t \ge 12` (below 1e-16).
    """
    return 12 if dtype == torch.float64 else 3


def log_gamma_ratio(x: Tensor, theta: Tensor) -> Tensor:
    r""":math:`\log\Gamma(\theta + x) - \log\Gamma(\theta)` for :math:`\theta > 0`, :math:`x \ge 0`.

    With :math:`u = \theta + s` and :math:`v = u + x` (:math:`s` from :func:`shift`), Stirling's
    series :math:`\log\Gamma(t) = (t - \tfrac12)\log t - t + \tfrac12\log 2\pi + \delta(t)`
    gives

    .. math::

        \log\Gamma(v) - \log\Gamma(u) = (v - \tfrac12)\operatorname{log1p}(x/u)
            + x(\log u - 1) + \delta(v) - \delta(u),

    and :math:`\log\Gamma(\theta + x) - \log\Gamma(\theta) = \log\Gamma(v) - \log\Gamma(u)
    - \sum_{i<s} \operatorname{log1p}\!\big(x / (\theta + i)\big)`. Exact (zero) at
    :math:`x = 0`.
    """
    s = shift(theta.dtype)
    u = theta + s
    v = u + x
    out = (v - 0.5) * torch.log1p(x / u) + x * (torch.log(u) - 1)
    out = out + _series(v, STIRLING, odd=True) - _series(u, STIRLING, odd=True)
    for i in range(s):
        out = out - torch.log1p(x / (theta + i))
    return out


def digamma_difference(x: Tensor, theta: Tensor) -> Tensor:
    r""":math:`\psi(\theta + x) - \psi(\theta)` for :math:`\theta > 0`, :math:`x \ge 0`.

    With :math:`u`, :math:`v` as in :func:`log_gamma_ratio` and the asymptotic series
    :math:`\psi(t) = \log t - \frac{1}{2t} - g(t)`,

    .. math::

        \psi(\theta + x) - \psi(\theta) = \operatorname{log1p}(x/u)
            + \frac{x}{2uv} - g(v) + g(u)
            + \sum_{i<s} \frac{x}{(\theta + i)(\theta + i + x)}.
    """
    s = shift(theta.dtype)
    u = theta + s
    v = u + x
    out = torch.log1p(x / u) + x / (2 * u * v) - _series(v, DIGAMMA) + _series(u, DIGAMMA)
    for i in range(s):
        shifted = theta + i
        out = out + x / (shifted * (shifted + x))
    return out


def _series(t: Tensor, coefficients: tuple[float, ...], odd: bool = False) -> Tensor:
    r""":math:`\sum_n c_n t^{-2n}` (times :math:`t` if ``odd``: odd powers), by Horner's rule."""
    r2 = t.reciprocal().square()
    out = torch.full_like(t, coefficients[-1])
    for coefficient in reversed(coefficients[:-1]):
        out = out * r2 + coefficient
    out = out * r2
    return out * t if odd else out
