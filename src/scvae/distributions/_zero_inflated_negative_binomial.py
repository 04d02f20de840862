"""Zero-inflated negative binomial likelihood."""

from typing import ClassVar

import torch
from scvi.distributions import ZeroInflatedNegativeBinomial as ScviZeroInflatedNegativeBinomial
from torch import Tensor
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all

from scvae._counts import dense_counts

from ._negative_binomial import NegativeBinomial
from ._negative_binomial_log_prob import negative_binomial_log_prob, negative_binomial_log_prob_zero
from ._utils import zero_inflated_log_prob


class ZeroInflatedNegativeBinomial(NegativeBinomial, ScviZeroInflatedNegativeBinomial):
    r"""Negative binomial with extra zeros: :math:`x = 0` with probability :math:`\pi`.

    With :math:`\pi = \sigma(\text{zi\_logits})` and :math:`\operatorname{NB}(x \mid \mu,
    \theta)` as in :class:`~scvae.distributions.NegativeBinomial`,

    .. math::

        p(0) = \pi + (1 - \pi) \left(\frac{\theta}{\theta + \mu}\right)^{\theta}, \qquad
        p(x) = (1 - \pi) \operatorname{NB}(x \mid \mu, \theta) \quad (x > 0),

    evaluated in log space with :math:`\log \operatorname{NB}(0) = -\theta
    \operatorname{softplus}(\log\mu - \log\theta)`, :math:`\log p(0) =
    \operatorname{logaddexp}(\text{zi\_logits}, \log \operatorname{NB}(0)) -
    \operatorname{softplus}(\text{zi\_logits})` (switching to a ``log1p`` form where
    :math:`p(0) > 1/2`) and :math:`\log p(x) = -\operatorname{softplus}(\text{zi\_logits}) +
    \log \operatorname{NB}(x)`. Mean :math:`(1 - \pi)\mu`, variance
    :math:`(1 - \pi)\mu(1 + \mu(\pi + 1/\theta))`. ``get_normalized("mu")`` is :math:`\mu` and
    ``get_normalized("scale")`` :math:`\mu` normalised over genes: the expression without the
    extra zeros, as in scvi-tools.

    A subclass of :class:`scvi.distributions.ZeroInflatedNegativeBinomial` (``mu``, ``theta``,
    ``zi_logits``, ``scale`` and its ``sample``) with an exact ``log_prob``; ``mu``, ``theta``
    and ``scale`` are computed when read, as in :class:`~scvae.distributions.NegativeBinomial`.

    Parameters
    ----------
    log_mu
        Log of the negative binomial mean.
    log_theta
        Log of the inverse dispersion.
    zi_logits
        Logits of the zero-inflation probability. All three are broadcast together.
    log_scale
        Log of the normalised expression returned by ``get_normalized("scale")``; defaults
        to the log of :math:`\mu` normalised over the last (gene) axis.
    validate_args
        Check arguments and values against the constraints.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        **NegativeBinomial.arg_constraints,
        "zi_logits": constraints.real,
    }

    def __init__(
        self,
        log_mu: Tensor,
        log_theta: Tensor,
        zi_logits: Tensor,
        log_scale: Tensor | None = None,
        validate_args: bool = False,
    ) -> None:
        log_mu, zi_logits = broadcast_all(log_mu, zi_logits)  # log_theta unexpanded
        self.zi_logits = zi_logits
        super().__init__(log_mu, log_theta, log_scale=log_scale, validate_args=validate_args)

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size | tuple[int, ...] = torch.Size()) -> Tensor:  # noqa: B008
        """A negative binomial draw, replaced by 0 with probability :math:`\\pi`.

        Parameters
        ----------
        sample_shape
            Leading shape of the draws (torch's ``sample_shape``).
        """
        counts = super().sample(sample_shape)
        return counts.masked_fill(torch.rand_like(counts) <= self.zi_probs, 0.0)

    def likelihood_parameters(self) -> dict[str, Tensor]:
        """``"mean"``: :math:`\\mu`; ``"dispersions"``: :math:`\\theta`; ``"dropout"``:
        :math:`\\pi`."""
        return {**super().likelihood_parameters(), "dropout": self.zi_probs}

    @property
    def mean(self) -> Tensor:
        r""":math:`(1 - \pi)\mu`."""
        return torch.sigmoid(-self.zi_logits) * self.mu

    @property
    def log_mean(self) -> Tensor:
        r""":math:`\log(1 - \pi) + \log\mu`."""
        return self.log_mu - torch.nn.functional.softplus(self.zi_logits)

    @property
    def variance(self) -> Tensor:
        r""":math:`(1 - \pi)\mu(1 + \mu(\pi + 1/\theta))`."""
        mu = self.mu
        return (
            torch.sigmoid(-self.zi_logits)
            * mu
            * (1 + mu * (torch.sigmoid(self.zi_logits) + 1 / self.theta))
        )

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
            value,
            negative_binomial_log_prob(value, self.log_mu, self.log_theta),
            negative_binomial_log_prob_zero(self.log_mu, self.log_theta),
            self.zi_logits,
        )

    def log_prob_sum(self, value: Tensor) -> Tensor:
        """Log-likelihood of each cell: the per-gene :meth:`log_prob` summed (not the NB's
        shortcut, which has no zero inflation).

        Parameters
        ----------
        value
            Counts, dense or a torch sparse CSR ``(cells, genes)`` matrix.
        """
        return self.log_prob(value).sum(-1)
