"""Negative binomial likelihood parameterised by log-mean and log-inverse-dispersion."""

from typing import ClassVar

import numpy as np
import torch
from scvi.distributions import NegativeBinomial as ScviNegativeBinomial
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.nn.functional import softplus

from ._gamma_ratio import digamma_difference, log_gamma_ratio
from ._utils import normalized, normalized_expression


def negative_binomial_log_prob(value: Tensor, log_mu: Tensor, log_theta: Tensor) -> Tensor:
    r"""Exact negative binomial log-pmf in the (mean, inverse dispersion) parameterisation.

    .. math::

        \log p(x) = -\theta \operatorname{softplus}(\log\mu - \log\theta)
                    - x \operatorname{softplus}(\log\theta - \log\mu)
                    + \log\Gamma(x + \theta) - \log\Gamma(\theta) - \log\Gamma(x + 1).

    No gradient flows to the counts (see :class:`_NegativeBinomialLogProb`).
    """
    return _NegativeBinomialLogProb.apply(value, log_mu, log_theta)


class _NegativeBinomialLogProb(torch.autograd.Function):
    r"""The NB log-pmf with the terms that vanish at a zero count evaluated only at non-zeros.

    With :math:`a = \log\mu - \log\theta`, every (component, cell, gene) entry pays for
    :math:`-\theta \operatorname{softplus}(a)`; the other terms, :math:`-x
    \operatorname{softplus}(-a)` and the lgamma terms, are exactly zero at :math:`x = 0`, and
    single-cell matrices are 90-98% zeros. The non-zero counts are located once per call and
    those terms computed at them alone; the lgamma terms once per (cell, gene), not once per
    GMVAE component, as they do not depend on the mean. :math:`\log\Gamma(x + \theta) -
    \log\Gamma(\theta)` and :math:`\psi(x + \theta) - \psi(\theta)` are evaluated as
    differences (:func:`~scvae.distributions._gamma_ratio.log_gamma_ratio`), not by subtracting
    two ``lgamma`` values, which loses them in float32 for nearly Poisson genes (large
    :math:`\theta`).

    The gradient is written out, so no full-size temporaries beyond :math:`a` and
    :math:`\operatorname{softplus}(a)` are kept. With :math:`\sigma` the logistic function
    and :math:`\psi` the digamma function,

    .. math::

        \frac{\partial}{\partial \log\mu} = -\theta\,\sigma(a) + x\,\sigma(-a), \qquad
        \frac{\partial}{\partial \log\theta} =
            -\theta \operatorname{softplus}(a) - \frac{\partial}{\partial \log\mu}
            + \theta\,[\psi(x + \theta) - \psi(\theta)].
    """

    @staticmethod
    def forward(ctx, value: Tensor, log_mu: Tensor, log_theta: Tensor) -> Tensor:
        # Contiguous, so that it and the tensors computed from it have flat views.
        a = (log_mu - log_theta).contiguous()
        shape = torch.broadcast_shapes(value.shape, a.shape)
        if a.shape != shape:  # more counts than parameters, e.g. an (n, 1, 1) grid of values
            a = a.expand(shape).contiguous()
        if shape[len(shape) - value.ndim :] != value.shape:
            value = value.expand(shape).contiguous()
        # Counts broadcast over the leading (sample, component) dimensions of a; full-size
        # tensors are addressed through their (cell, gene) grid flattened ("flat" positions).
        n_grid = value.dim()
        # The lgamma terms live on the (cell, gene) grid of the counts and the dispersion.
        coefficient_shape = torch.broadcast_shapes(value.shape, log_theta.shape)
        theta = log_theta.exp()
        softplus_a = softplus(a)
        out = softplus_a * -theta
        flat = _nonzero_positions(value)
        counts = value.reshape(-1)[flat]
        theta_nonzero = _at(theta, coefficient_shape, n_grid, flat)
        a_nonzero = _at(a, shape, n_grid, flat)
        log_coefficient = log_gamma_ratio(counts, theta_nonzero) - torch.lgamma(counts + 1)
        _add_at(out, n_grid, flat, log_coefficient - counts * softplus(-a_nonzero))
        ctx.n_grid, ctx.coefficient_shape = n_grid, coefficient_shape
        ctx.save_for_backward(
            log_mu, log_theta, theta, a, softplus_a, counts, a_nonzero, theta_nonzero, flat
        )
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor | None, Tensor | None]:
        log_mu, log_theta, theta, a, softplus_a, counts, a_nonzero, theta_nonzero, flat = (
            ctx.saved_tensors
        )
        n_grid, coefficient_shape = ctx.n_grid, ctx.coefficient_shape
        grad_nonzero = _at(grad, a.shape, n_grid, flat)
        grad_log_mu = torch.sigmoid(a).mul_(-theta).mul_(grad)
        _add_at(grad_log_mu, n_grid, flat, counts * torch.sigmoid(-a_nonzero) * grad_nonzero)
        grad_log_theta = None
        if ctx.needs_input_grad[2]:
            full = (softplus_a * grad).mul_(-theta).sub_(grad_log_mu)
            full = full.sum_to_size(coefficient_shape)
            digammas = digamma_difference(counts, theta_nonzero)
            _add_at(
                full,
                n_grid,
                flat,
                theta_nonzero * digammas * grad_nonzero.sum_to_size(digammas.shape),
            )
            grad_log_theta = full.sum_to_size(log_theta.shape)
        grad_log_mu = grad_log_mu.sum_to_size(log_mu.shape) if ctx.needs_input_grad[1] else None
        return None, grad_log_mu, grad_log_theta


def _nonzero_positions(value: Tensor) -> Tensor:
    """Flat positions of the non-zero entries of the contiguous ``value``."""
    mask = value.reshape(-1).bool()
    if mask.device.type == "cpu":
        # numpy's flatnonzero is several times faster than torch.nonzero on a CPU.
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return mask.nonzero().squeeze(1)


def _at(tensor: Tensor, shape: torch.Size, n_grid: int, flat: Tensor) -> Tensor:
    """Entries of ``tensor`` (broadcast to ``shape``) at the flat positions ``flat`` of its
    last ``n_grid`` dimensions, for every index of the leading ones.

    A broadcast tensor (a per-gene dispersion, an incoming gradient expanded over genes) is not
    materialised at full size: the flat positions are mapped to offsets in its storage through
    its strides, which are 0 along the broadcast dimensions.
    """
    view = tensor.expand(shape)
    leading = shape[: len(shape) - n_grid]
    if view.is_contiguous():
        return view.reshape(*leading, -1).index_select(-1, flat)
    grid, grid_strides = shape[len(leading) :], view.stride()[len(leading) :]
    offsets, block, span = torch.zeros_like(flat), 1, 1
    for size, stride in zip(reversed(grid), reversed(grid_strides), strict=True):
        if stride and size > 1:
            offsets += (flat if block == 1 else flat // block) % size * stride
            span += (size - 1) * stride
        block *= size
    rows = view.as_strided((*leading, span), (*view.stride()[: len(leading)], 1))
    return rows.index_select(-1, offsets)


def _add_at(tensor: Tensor, n_grid: int, flat: Tensor, values: Tensor) -> None:
    """Add ``values`` in place at the flat positions ``flat`` of the last ``n_grid``
    dimensions of the contiguous ``tensor``."""
    leading = tensor.shape[: tensor.dim() - n_grid]
    tensor.view(*leading, -1).index_add_(-1, flat, values.expand(*leading, len(flat)))


def negative_binomial_log_prob_zero(log_mu: Tensor, log_theta: Tensor) -> Tensor:
    r""":math:`\log p(0) = -\theta \operatorname{softplus}(\log\mu - \log\theta)`."""
    return -log_theta.exp() * softplus(log_mu - log_theta)


class NegativeBinomial(ScviNegativeBinomial):
    r"""Negative binomial with mean :math:`\mu` and inverse dispersion :math:`\theta`.

    .. math::

        p(x) = \frac{\Gamma(x + \theta)}{\Gamma(\theta)\, x!}
               \left(\frac{\theta}{\theta + \mu}\right)^{\theta}
               \left(\frac{\mu}{\theta + \mu}\right)^{x},

    with :math:`\log\frac{\theta}{\theta+\mu} = -\operatorname{softplus}(\log\mu - \log\theta)`
    and :math:`\log\frac{\mu}{\theta+\mu} = -\operatorname{softplus}(\log\theta - \log\mu)`.
    Mean :math:`\mu`, variance :math:`\mu + \mu^2/\theta`.

    A subclass of :class:`scvi.distributions.NegativeBinomial` (``mu``, ``theta``, ``scale``
    and its gamma-Poisson ``sample``) whose ``log_prob`` is exact: scvi-tools' version adds
    ``eps = 1e-8`` inside its logarithms, which is wrong for means near :math:`10^{-8}`.
    ``mu``, ``theta`` and ``scale`` are computed from the log-parameters when read; the
    log-likelihood does not need them.

    Parameters
    ----------
    log_mu
        Log of the mean.
    log_theta
        Log of the inverse dispersion; broadcast against ``log_mu``.
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
        self.on_mps = log_mu.device.type == "mps"  # read by scvi-tools' sample
        batch_shape = torch.broadcast_shapes(log_mu.shape, log_theta.shape)
        Distribution.__init__(self, batch_shape=batch_shape, validate_args=validate_args)

    @property
    def mu(self) -> Tensor:
        r"""Mean :math:`\mu`."""
        return self.log_mu.exp().expand(self.batch_shape)

    @property
    def theta(self) -> Tensor:
        r"""Inverse dispersion :math:`\theta`."""
        return self.log_theta.exp().expand(self.batch_shape)

    @property
    def scale(self) -> Tensor:
        """Normalised expression: ``exp(log_scale)``, or the mean normalised over genes."""
        return normalized_expression(self.log_scale, self.log_mu)

    @property
    def variance(self) -> Tensor:
        r""":math:`\mu + \mu^2 / \theta`."""
        mu = self.mu
        return mu + mu**2 / self.theta

    def get_normalized(self, key: str) -> Tensor:
        """``"mu"``: the mean; ``"scale"``: the normalised expression."""
        return normalized(self, key)

    def log_prob(self, value: Tensor) -> Tensor:
        """Exact log-pmf, see the class docstring."""
        if self._validate_args:
            self._validate_sample(value)
        return negative_binomial_log_prob(value, self.log_mu, self.log_theta)
