"""Negative binomial likelihood parameterised by log-mean and log-inverse-dispersion."""

from typing import ClassVar

import torch
from scvi.distributions import NegativeBinomial as ScviNegativeBinomial
from torch import Tensor
from torch.distributions import Distribution, Gamma, constraints

from scvae._counts import dense_counts

from ._base import CountDistribution
from ._negative_binomial_log_prob import (
    broadcast_shape,
    finite_log_theta,
    negative_binomial_log_prob,
)
from ._poisson import MAX_SAMPLED_RATE
from ._utils import normalized_expression


class NegativeBinomial(CountDistribution, ScviNegativeBinomial):
    r"""Negative binomial with mean :math:`\mu` and inverse dispersion :math:`\theta`.

    .. math::

        p(x) = \frac{\Gamma(x + \theta)}{\Gamma(\theta)\, x!}
               \left(\frac{\theta}{\theta + \mu}\right)^{\theta}
               \left(\frac{\mu}{\theta + \mu}\right)^{x},

    with :math:`\log\frac{\theta}{\theta+\mu} = -\operatorname{softplus}(\log\mu - \log\theta)`
    and :math:`\log\frac{\mu}{\theta+\mu} = -\operatorname{softplus}(\log\theta - \log\mu)`.
    Mean :math:`\mu`, variance :math:`\mu + \mu^2/\theta`.

    A subclass of :class:`scvi.distributions.NegativeBinomial` (``mu``, ``theta``, ``scale``)
    whose ``log_prob`` is exact: scvi-tools' version adds ``eps = 1e-8`` inside its
    logarithms, which is wrong for means near :math:`10^{-8}`; and whose gamma-Poisson
    ``sample`` draws means above :math:`10^8` too (scvi-tools' caps the Poisson rates there).
    ``mu``, ``theta`` and ``scale`` are computed from the log-parameters when read; the
    log-likelihood does not need them.

    Parameters
    ----------
    log_mu
        Log of the mean.
    log_theta
        Log of the inverse dispersion; broadcast against ``log_mu``. Values above 60 are
        read as 60, where the distribution is the Poisson of the same mean to float
        precision (``exp`` overflows float32 above 88.7).
    log_scale
        Log of the normalised expression returned by ``get_normalized("scale")``; defaults
        to the log of the mean normalised over the last (gene) axis.
    validate_args
        Check arguments and values against the constraints.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "log_mu": constraints.real,
        "log_theta": constraints.real,
    }

    def __init__(
        self,
        log_mu: Tensor,
        log_theta: Tensor,
        log_scale: Tensor | None = None,
        validate_args: bool = False,
    ) -> None:
        # log_theta keeps its own (e.g. per-gene) shape: the lgamma terms then run once per
        # (cell, gene), not once per GMVAE component as well. scvi-tools' constructor is not
        # called: it would compute mu, theta and scale (full-size exponentials) up front.
        self.log_mu, self.log_theta, self.log_scale = log_mu, log_theta, log_scale
        batch_shape = broadcast_shape(log_mu.shape, log_theta.shape)
        Distribution.__init__(self, batch_shape=batch_shape, validate_args=validate_args)

    @property
    def mu(self) -> Tensor:
        r"""Mean :math:`\mu`."""
        return self.log_mu.exp().expand(self.batch_shape)

    @property
    def log_mean(self) -> Tensor:
        r""":math:`\log\mu`."""
        return self.log_mu.expand(self.batch_shape)

    @property
    def theta(self) -> Tensor:
        r"""Inverse dispersion :math:`\theta`."""
        return finite_log_theta(self.log_theta).exp().expand(self.batch_shape)

    @property
    def scale(self) -> Tensor:
        """Normalised expression: ``exp(log_scale)``, or the mean normalised over genes."""
        return normalized_expression(self.log_scale, self.log_mu)

    @property
    def variance(self) -> Tensor:
        r""":math:`\mu + \mu^2 / \theta`."""
        mu = self.mu
        return mu + mu**2 / self.theta

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size | tuple[int, ...] = torch.Size()) -> Tensor:  # noqa: B008
        r"""Counts :math:`x \sim \operatorname{Poisson}(\lambda)` with
        :math:`\lambda \sim \operatorname{Gamma}(\theta, \text{rate}=\theta/\mu)`; a
        :math:`\lambda` above :data:`MAX_SAMPLED_RATE` is capped there (torch's Poisson
        samplers overflow beyond; no count of a gene in a cell comes near).

        Parameters
        ----------
        sample_shape
            Leading shape of the draws (torch's ``sample_shape``).
        """
        log_rate = (finite_log_theta(self.log_theta) - self.log_mu).expand(self.batch_shape)
        device = log_rate.device
        if device.type == "mps":  # torch has no gamma or Poisson sampler on MPS
            log_rate = log_rate.cpu()
        gamma = Gamma(self.theta.to(log_rate.device), log_rate.exp(), validate_args=False)
        rates = gamma.sample(torch.Size(sample_shape)).clamp(max=MAX_SAMPLED_RATE)
        return torch.poisson(rates).to(device)

    def likelihood_parameters(self) -> dict[str, Tensor]:
        """``"mean"``: :math:`\\mu`; ``"dispersions"``: :math:`\\theta`."""
        return {"mean": self.mu, "dispersions": self.theta}

    def log_prob(self, value: Tensor) -> Tensor:
        """Exact log-pmf, see the class docstring.

        Parameters
        ----------
        value
            Counts, ``(..., cells, genes)``, dense or a torch sparse CSR ``(cells, genes)``
            matrix.
        """
        if self._validate_args:
            self._validate_sample(dense_counts(value))
        return negative_binomial_log_prob(value, self.log_mu, self.log_theta)

    def log_prob_sum(self, value: Tensor) -> Tensor:
        r"""Log-likelihood of each cell, ``log_prob(value).sum(-1)``, without the per-gene tensor.

        The full-size term :math:`-\theta \operatorname{softplus}(\log\mu - \log\theta)` is
        summed over genes by a matrix-vector product, and its dispersion gradient likewise,
        which saves several passes over the ``(cells, genes)`` grid per training step.

        Parameters
        ----------
        value
            Counts, dense or a torch sparse CSR ``(cells, genes)`` matrix.
        """
        if self._validate_args:
            self._validate_sample(dense_counts(value))
        return negative_binomial_log_prob(value, self.log_mu, self.log_theta, sum_genes=True)
