"""Poisson likelihood parameterised by its log-rate."""

from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import constraints

from scvae._counts import dense_counts

from ._base import CountDistribution
from ._utils import normalized_expression, on_nonzero_counts

#: Largest Poisson rate the samplers draw from: 2^31, below the overflow of torch's Poisson
#: samplers (int64 on the CPU, 32-bit integers on CUDA); no count of a gene in a cell comes near.
MAX_SAMPLED_RATE = 2.0**31


def _log_factorial(value: Tensor) -> Tensor:
    return torch.lgamma(value + 1)


def poisson_log_prob(value: Tensor, log_rate: Tensor) -> Tensor:
    r""":math:`\log p(x) = x \log\lambda - \lambda - \log\Gamma(x + 1)`, computed from log-rates."""
    # log_rate clamped to the dtype's lowest value, so that a rate of 0 (log_rate = -inf)
    # gives x log(lambda) = 0 at x = 0 (not 0 * -inf = nan) and about -3e38 (float32) or
    # -inf at x > 0; cheaper than a mask over every count.
    x_log_rate = value * log_rate.clamp(min=torch.finfo(log_rate.dtype).min)
    return x_log_rate - log_rate.exp() - on_nonzero_counts(value, _log_factorial)


class Poisson(CountDistribution):
    r"""Poisson distribution with rate :math:`\lambda = e^{\text{log\_rate}}`.

    .. math::

        \log p(x \mid \lambda) = x \log\lambda - \lambda - \log\Gamma(x + 1),

    evaluated from ``log_rate`` directly, so a rate far below the floating-point range of the
    rate itself (e.g. :math:`10^{-40}` in float32) still gives a finite, exact log-likelihood.
    Mean and variance are both :math:`\lambda`.

    Parameters
    ----------
    log_rate
        Log of the rate, any shape (e.g. ``(cells, genes)`` or ``(samples, cells, genes)``).
    log_scale
        Log of the normalised expression returned by ``get_normalized("scale")``; defaults
        to the log of the rate normalised over the last (gene) axis.
    validate_args
        Check arguments and values against the constraints.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {"log_rate": constraints.real}

    def __init__(
        self, log_rate: Tensor, log_scale: Tensor | None = None, validate_args: bool = False
    ) -> None:
        self.log_rate = log_rate
        self.log_scale = log_scale
        super().__init__(batch_shape=log_rate.shape, validate_args=validate_args)

    @property
    def scale(self) -> Tensor:
        """Normalised expression: ``exp(log_scale)``, or the rate normalised over genes."""
        return normalized_expression(self.log_scale, self.log_rate)

    @property
    def rate(self) -> Tensor:
        r""":math:`\lambda = e^{\text{log\_rate}}`."""
        return self.log_rate.exp()

    @property
    def mean(self) -> Tensor:
        r""":math:`\lambda`."""
        return self.rate

    @property
    def log_mean(self) -> Tensor:
        r""":math:`\log\lambda`."""
        return self.log_rate

    def likelihood_parameters(self) -> dict[str, Tensor]:
        """``"mean"``: the rate :math:`\\lambda`."""
        return {"mean": self.rate}

    @property
    def variance(self) -> Tensor:
        r""":math:`\lambda`."""
        return self.rate

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size | tuple[int, ...] = torch.Size()) -> Tensor:  # noqa: B008
        """Draw counts (float tensor of shape ``sample_shape + batch_shape``).

        Parameters
        ----------
        sample_shape
            Leading shape of the draws (torch's ``sample_shape``). A rate above
            :data:`MAX_SAMPLED_RATE` is drawn from as that rate.
        """
        rate = self.rate.clamp(max=MAX_SAMPLED_RATE)
        return torch.poisson(rate.expand(self._extended_shape(sample_shape)))

    def log_prob(self, value: Tensor) -> Tensor:
        r""":math:`x \log\lambda - \lambda - \log\Gamma(x + 1)`.

        Parameters
        ----------
        value
            Counts, ``(..., cells, genes)``, dense or a torch sparse CSR ``(cells, genes)``
            matrix.
        """
        value = dense_counts(value)
        if self._validate_args:
            self._validate_sample(value)
        return poisson_log_prob(value, self.log_rate)
