"""Zero-inflated Poisson likelihood."""

from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all

from scvae._counts import dense_counts

from ._poisson import Poisson, poisson_log_prob
from ._utils import zero_inflated_log_prob


class ZeroInflatedPoisson(Poisson):
    r"""Poisson with extra zeros: :math:`x = 0` with probability :math:`\pi`, else Poisson.

    With :math:`\pi = \sigma(\text{zi\_logits})` and :math:`\lambda = e^{\text{log\_rate}}`,

    .. math::

        p(0) = \pi + (1 - \pi) e^{-\lambda}, \qquad
        p(x) = (1 - \pi)\, \frac{\lambda^x e^{-\lambda}}{x!} \quad (x > 0),

    evaluated in log space as :math:`\log p(0) = \operatorname{logaddexp}(\text{zi\_logits},
    -\lambda) - \operatorname{softplus}(\text{zi\_logits})` (switching to
    :math:`\operatorname{log1p}(-(1 - \pi)(1 - e^{-\lambda}))` where :math:`p(0) > 1/2`, which
    keeps relative precision as :math:`p(0) \to 1`) and
    :math:`\log p(x) = -\operatorname{softplus}(\text{zi\_logits}) + \log
    \operatorname{Poisson}(x \mid \lambda)`. Mean :math:`(1 - \pi)\lambda`, variance
    :math:`(1 - \pi)\lambda(1 + \pi\lambda)`. ``get_normalized("mu")`` is :math:`\lambda` and
    ``get_normalized("scale")`` the rates normalised over genes: the expression without the
    extra zeros, as scvi-tools' zero-inflated likelihoods give it.

    Parameters
    ----------
    log_rate
        Log of the Poisson rate.
    zi_logits
        Logits of the zero-inflation probability; broadcast against ``log_rate``.
    log_scale
        Log of the normalised expression returned by ``get_normalized("scale")``; defaults
        to the log of the rate normalised over the last (gene) axis.
    validate_args
        Check arguments and values against the constraints.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "log_rate": constraints.real,
        "zi_logits": constraints.real,
    }

    def __init__(
        self,
        log_rate: Tensor,
        zi_logits: Tensor,
        log_scale: Tensor | None = None,
        validate_args: bool = False,
    ) -> None:
        log_rate, zi_logits = broadcast_all(log_rate, zi_logits)
        self.zi_logits = zi_logits
        super().__init__(log_rate, log_scale=log_scale, validate_args=validate_args)

    @property
    def log_mean(self) -> Tensor:
        r""":math:`\log(1 - \pi) + \log\lambda`."""
        return self.log_rate - torch.nn.functional.softplus(self.zi_logits)

    @property
    def zi_probs(self) -> Tensor:
        r"""Zero-inflation probability :math:`\pi = \sigma(\text{zi\_logits})`."""
        return torch.sigmoid(self.zi_logits)

    def likelihood_parameters(self) -> dict[str, Tensor]:
        """``"mean"``: the rate :math:`\\lambda`; ``"dropout"``: :math:`\\pi`."""
        return {"mean": self.rate, "dropout": self.zi_probs}

    @property
    def mean(self) -> Tensor:
        r""":math:`(1 - \pi)\lambda`."""
        return torch.sigmoid(-self.zi_logits) * self.rate

    @property
    def variance(self) -> Tensor:
        r""":math:`(1 - \pi)\lambda(1 + \pi\lambda)`."""
        rate = self.rate
        return torch.sigmoid(-self.zi_logits) * rate * (1 + self.zi_probs * rate)

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size | tuple[int, ...] = torch.Size()) -> Tensor:  # noqa: B008
        """Draw Poisson counts, then zero each with probability :math:`\\pi`.

        Parameters
        ----------
        sample_shape
            Leading shape of the draws (torch's ``sample_shape``).
        """
        counts = super().sample(sample_shape)
        inflated = torch.rand_like(counts) < self.zi_probs
        return counts.masked_fill(inflated, 0.0)

    def log_prob(self, value: Tensor) -> Tensor:
        """Exact log-pmf, see the class docstring.

        Parameters
        ----------
        value
            Counts, ``(..., cells, genes)``, dense or a torch sparse CSR ``(cells, genes)``
            matrix.
        """
        value = dense_counts(value)
        if self._validate_args:
            self._validate_sample(value)
        return zero_inflated_log_prob(
            value, poisson_log_prob(value, self.log_rate), -self.rate, self.zi_logits
        )
