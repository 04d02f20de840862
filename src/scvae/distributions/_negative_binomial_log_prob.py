"""The negative binomial log-pmf, evaluated at the non-zero counts only, with its gradient."""

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.nn.functional import softplus

from scvae._counts import csr_row_indices, is_sparse_csr

from ._gamma_ratio import (
    GammaRatioTerms,
    digamma_excess,
    gamma_ratio_terms,
    log_gamma_ratio,
    softplus_minus_sigmoid,
)

#: Largest :math:`\log\theta` the negative binomial uses; larger values are lowered to it.
#: At :math:`\theta = e^{60}` it is the Poisson of the same mean to float precision (its
#: excess variance :math:`\mu^2/\theta` is below :math:`10^{-14}\mu` for any
#: :math:`\mu < 10^{12}`), while :math:`e^{\log\theta}` overflows float32 above 88.7.
MAX_LOG_THETA = 60.0
#: Smallest :math:`\log\theta` the negative binomial uses; smaller values are raised to it.
#: Below it, :math:`x/\theta` overflows float32 for counts of :math:`10^{12}` and more (at
#: :math:`\log\theta < \log x - 88.7` in general); :math:`\theta = e^{-60}` already puts
#: all but :math:`\theta \log(\mu/\theta)` of the mass at zero.
MIN_LOG_THETA = -60.0


def finite_log_theta(log_theta: Tensor) -> Tensor:
    """``log_theta`` clamped to [:data:`MIN_LOG_THETA`, :data:`MAX_LOG_THETA`]: the
    negative binomial's range in which every term stays finite in float32."""
    return log_theta.clamp(MIN_LOG_THETA, MAX_LOG_THETA)


def _at_least_float32(*tensors: Tensor) -> tuple[Tensor, ...]:
    """``tensors`` in their common floating type, float32 at least: a decoder run under
    mixed precision (``precision="bf16-mixed"``) gives half-precision means, in which the
    log-pmf's terms lose their digits."""
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return tuple(tensor.to(dtype) for tensor in tensors)


def negative_binomial_log_prob(
    value: Tensor, log_mu: Tensor, log_theta: Tensor, sum_genes: bool = False
) -> Tensor:
    r"""Exact negative binomial log-pmf in the (mean, inverse dispersion) parameterisation.

    .. math::

        \log p(x) = -\theta \operatorname{softplus}(\log\mu - \log\theta)
                    - x \operatorname{softplus}(\log\theta - \log\mu)
                    + \log\Gamma(x + \theta) - \log\Gamma(\theta) - \log\Gamma(x + 1).

    ``value`` may be a torch sparse CSR ``(cells, genes)`` matrix of counts, of which only the
    stored entries are read. With ``sum_genes`` the log-pmf comes summed over the last
    (gene) axis, without the per-gene tensor. No gradient flows to the counts (see
    :class:`_NegativeBinomialLogProb`). ``log_theta`` is clamped to
    [:data:`MIN_LOG_THETA`, :data:`MAX_LOG_THETA`].
    """
    log_mu, log_theta = _at_least_float32(log_mu, log_theta)
    # Under mixed precision autocast would run the sum over genes (a matrix product) in half.
    with torch.autocast(log_mu.device.type, enabled=False):
        log_theta = finite_log_theta(log_theta)
        return _NegativeBinomialLogProb.apply(value, log_mu, log_theta, sum_genes)


class _NegativeBinomialLogProb(torch.autograd.Function):
    r"""The NB log-pmf with the terms that vanish at a zero count evaluated only at non-zeros.

    With :math:`a = \log\mu - \log\theta`, every (component, cell, gene) entry pays for
    :math:`-\theta \operatorname{softplus}(a)`; the other terms, :math:`-x
    \operatorname{softplus}(-a)` and the lgamma terms, are exactly zero at :math:`x = 0`, and
    single-cell matrices are 90-98% zeros. The non-zero counts are located once per call and
    those terms computed at them alone; given counts of shape (cells, genes), as in
    training, the lgamma terms once per (cell, gene), not once per GMVAE component, as they
    do not depend on the mean. :math:`\log\Gamma(x + \theta) -
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
            -\theta\,[\operatorname{softplus}(a) - \sigma(a)] + x\,\sigma(a)
            + \theta\,[\psi(x + \theta) - \psi(\theta)] - x,

    where the two bracketed differences come from their series where they are small
    (:func:`~scvae.distributions._gamma_ratio.softplus_minus_sigmoid`,
    :func:`~scvae.distributions._gamma_ratio.digamma_excess`).
    """

    @staticmethod
    def forward(
        ctx, value: Tensor, log_mu: Tensor, log_theta: Tensor, sum_genes: bool = False
    ) -> Tensor:
        a = log_mu - log_theta
        if not is_sparse_csr(value):
            value = value.to(a.dtype)  # as the stored counts of sparse ones are, below
        shape = broadcast_shape(value.shape, a.shape)
        if a.shape != shape:  # more counts than parameters, e.g. an (n, 1, 1) grid of values
            a = a.expand(shape)
        # Contiguous, so that they and the tensors computed from them have flat views.
        a = a.contiguous()
        if is_sparse_csr(value) and shape[len(shape) - 2 :] != value.shape:
            value = value.to_dense()  # sparse counts that broadcast: not worth a special case
        if shape[len(shape) - value.ndim :] != value.shape:
            value = value.expand(shape)
        # Counts broadcast over the leading (sample, component) dimensions of a; full-size
        # tensors are addressed through their (cell, gene) grid flattened ("flat" positions).
        n_grid = value.dim()
        # The lgamma terms live on the (cell, gene) grid of the counts and the dispersion.
        coefficient_shape = broadcast_shape(value.shape, log_theta.shape)
        neg_theta = log_theta.exp().neg_()
        softplus_a = softplus(a)
        if not sum_genes:
            out = softplus_a * neg_theta
        elif neg_theta.shape == shape[-1:]:  # per-gene dispersion: a matrix-vector product
            out = softplus_a @ neg_theta
        else:
            out = (softplus_a * neg_theta).sum(-1)
        if is_sparse_csr(value):
            # The stored entries; an explicitly stored zero adds exactly 0 below.
            positions = _csr_positions(value)
            counts = value.values().to(a.dtype)
        else:
            value = value.contiguous()
            positions = _nonzero_positions(value)
            counts = value.view(-1).index_select(0, positions.flat)
        theta_nonzero = _at(neg_theta, coefficient_shape, n_grid, positions).neg_()
        a_nonzero = _at(a, shape, n_grid, positions)
        terms = gamma_ratio_terms(counts, theta_nonzero)
        log_coefficient = log_gamma_ratio(counts, theta_nonzero, terms)
        log_coefficient -= torch.lgamma(counts + 1)
        nonzero_terms = log_coefficient - counts * softplus(-a_nonzero)
        if sum_genes:  # added to the sum of the row (cell) each position is in
            rows = positions.index[0] if n_grid == 2 else positions.flat // shape[-1]
            _add_at(out, n_grid - 1, _Positions(rows, ()), nonzero_terms)
        else:
            _add_at(out, n_grid, positions, nonzero_terms)
        ctx.n_grid, ctx.coefficient_shape, ctx.sum_genes = n_grid, coefficient_shape, sum_genes
        ctx.positions = positions
        ctx.save_for_backward(
            log_mu, log_theta, neg_theta, a, softplus_a, counts, a_nonzero, theta_nonzero, *terms
        )
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor | None, Tensor | None, None]:
        log_mu, log_theta, neg_theta, a, softplus_a, counts, a_nonzero, theta_nonzero = (
            ctx.saved_tensors[:8]
        )
        terms = GammaRatioTerms(*ctx.saved_tensors[8:])
        n_grid, coefficient_shape, positions = ctx.n_grid, ctx.coefficient_shape, ctx.positions
        if ctx.sum_genes:
            grad = grad.unsqueeze(-1)  # one value per row, broadcast over the genes
        grad_nonzero = _at(grad, a.shape, n_grid, positions)
        sigmoid_a = torch.sigmoid(a)
        grad_log_mu = (sigmoid_a * neg_theta).mul_(grad)  # sigmoid_a is kept for the gap
        _add_at(grad_log_mu, n_grid, positions, counts * torch.sigmoid(-a_nonzero) * grad_nonzero)
        grad_log_theta = None
        if ctx.needs_input_grad[2]:
            # Every entry pays -theta [softplus(a) - sigmoid(a)], a non-zero count also
            # x sigmoid(a) + theta [psi(x + theta) - psi(theta)] - x: each part is computed
            # without cancellation, as for a nearly Poisson gene the gradient is about
            # mu^2 / theta while its terms are about mu (the docstring's form, rearranged).
            excess = digamma_excess(counts, theta_nonzero, terms)
            nonzero_terms = (counts * torch.sigmoid(a_nonzero) * grad_nonzero).sum_to_size(
                excess.shape
            )
            nonzero_terms += excess * grad_nonzero.sum_to_size(excess.shape)
            gap = _softplus_minus_sigmoid(softplus_a, sigmoid_a, log_theta)
            # Both parts added per (cell, gene) before the sum over cells, whose terms would
            # otherwise each be about mu^2 / theta and their total much smaller.
            full = gap.mul_(grad).mul_(neg_theta).sum_to_size(coefficient_shape)
            _add_at(full, n_grid, positions, nonzero_terms)
            grad_log_theta = full.sum_to_size(log_theta.shape)
        grad_log_mu = grad_log_mu.sum_to_size(log_mu.shape) if ctx.needs_input_grad[1] else None
        return None, grad_log_mu, grad_log_theta, None


#: :math:`\log\theta` above which :math:`\operatorname{softplus}(a) - \sigma(a)` is taken
#: from its series: subtracting the two costs :math:`\theta` rounding errors of the
#: gradient's size (float32: under 1e-4 of it below :math:`\theta = e^7`).
SERIES_LOG_THETA = 7.0


def _softplus_minus_sigmoid(softplus_a: Tensor, sigmoid_a: Tensor, log_theta: Tensor) -> Tensor:
    """:func:`~scvae.distributions._gamma_ratio.softplus_minus_sigmoid` where the dispersion
    needs it (above :data:`SERIES_LOG_THETA`, for a per-gene one only in those genes' columns),
    the plain difference elsewhere: the series costs several passes over every entry of a
    minibatch, and fitted dispersions are rarely that large."""
    large = log_theta > SERIES_LOG_THETA
    if not large.any():
        return softplus_a - sigmoid_a
    per_gene = log_theta.dim() > 0 and log_theta.numel() == log_theta.shape[-1]
    if not per_gene or large.shape[-1] != softplus_a.shape[-1]:
        # not one per gene (per cell and gene, per batch): everywhere
        return softplus_minus_sigmoid(softplus_a, sigmoid_a)
    genes = large.reshape(-1).nonzero().squeeze(1)
    gap = softplus_a - sigmoid_a
    exact = softplus_minus_sigmoid(softplus_a[..., genes], sigmoid_a[..., genes])
    return gap.index_copy_(-1, genes, exact)


def broadcast_shape(*shapes: torch.Size) -> torch.Size:
    """:func:`torch.broadcast_shapes` in plain Python (torch's runs slow reference code)."""
    n_dims = max(map(len, shapes))
    sizes = []
    padded = [(1,) * (n_dims - len(shape)) + tuple(shape) for shape in shapes]
    for dim_sizes in zip(*padded, strict=True):
        distinct = set(dim_sizes) - {1}
        if len(distinct) > 1:
            return torch.broadcast_shapes(*shapes)  # raises, with torch's message
        sizes.append(distinct.pop() if distinct else 1)
    return torch.Size(sizes)


class _Positions(NamedTuple):
    """Non-zero entries of a contiguous tensor: flat positions and the index along each axis."""

    flat: Tensor
    index: tuple[Tensor, ...]


def _nonzero_positions(value: Tensor) -> _Positions:
    """Where the contiguous ``value`` is non-zero."""
    mask = value.view(-1).bool()
    if mask.device.type != "cpu":
        flat = mask.nonzero().squeeze(1)
        return _Positions(flat, torch.unravel_index(flat, value.shape))
    # numpy's nonzero is several times faster than torch.nonzero on a CPU, and one divmod
    # gives both (cell, gene) indices of a matrix.
    flat = mask.numpy().nonzero()[0]
    if value.dim() == 2:
        index = np.divmod(flat, value.shape[1])
    else:
        index = np.unravel_index(flat, value.shape)
    return _Positions(torch.from_numpy(flat), tuple(map(torch.from_numpy, index)))


def _csr_positions(value: Tensor) -> _Positions:
    """Positions of the stored entries of the sparse CSR matrix ``value``."""
    cols = value.col_indices().long()
    rows = csr_row_indices(value.crow_indices(), len(cols))
    return _Positions(rows * value.shape[1] + cols, (rows, cols))


def _at(tensor: Tensor, shape: torch.Size, n_grid: int, positions: _Positions) -> Tensor:
    """Entries of ``tensor`` (broadcast to ``shape``) at ``positions`` of its last ``n_grid``
    dimensions, for every index of the leading ones.

    A broadcast tensor (a per-gene dispersion, an incoming gradient expanded over genes) is not
    materialised at full size: the positions are mapped to offsets in its storage through its
    strides, which are 0 along the broadcast dimensions.
    """
    view = tensor.expand(shape)
    leading = shape[: len(shape) - n_grid]
    if view.is_contiguous():
        return view.reshape(*leading, -1).index_select(-1, positions.flat)
    grid, grid_strides = shape[len(leading) :], view.stride()[len(leading) :]
    offsets, span = None, 1
    for index, size, stride in zip(positions.index, grid, grid_strides, strict=True):
        if stride and size > 1:
            term = index if stride == 1 else index * stride
            offsets = term if offsets is None else offsets + term
            span += (size - 1) * stride
    if offsets is None:  # broadcast along the whole grid
        offsets = torch.zeros_like(positions.flat)
    rows = view.as_strided((*leading, span), (*view.stride()[: len(leading)], 1))
    return rows.index_select(-1, offsets)


def _add_at(tensor: Tensor, n_grid: int, positions: _Positions, values: Tensor) -> None:
    """Add ``values`` in place at ``positions`` of the last ``n_grid`` dimensions of the
    contiguous ``tensor``."""
    leading = tensor.shape[: tensor.dim() - n_grid]
    flat = positions.flat
    tensor.view(*leading, -1).index_add_(-1, flat, values.expand(*leading, len(flat)))


def negative_binomial_log_prob_zero(log_mu: Tensor, log_theta: Tensor) -> Tensor:
    r""":math:`\log p(0) = -\theta \operatorname{softplus}(\log\mu - \log\theta)`, whose
    gradient in :math:`\log\theta`, :math:`-\theta[\operatorname{softplus}(a) - \sigma(a)]`,
    is formed without cancellation as in :class:`_NegativeBinomialLogProb`."""
    log_mu, log_theta = _at_least_float32(log_mu, log_theta)
    return _NegativeBinomialLogProbZero.apply(log_mu, finite_log_theta(log_theta))


class _NegativeBinomialLogProbZero(torch.autograd.Function):
    """:func:`negative_binomial_log_prob_zero` with its gradient written out."""

    @staticmethod
    def forward(ctx, log_mu: Tensor, log_theta: Tensor) -> Tensor:
        a = log_mu - log_theta
        theta, softplus_a = log_theta.exp(), softplus(a)
        ctx.save_for_backward(log_mu, log_theta, theta, a, softplus_a)
        return -theta * softplus_a

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        log_mu, log_theta, theta, a, softplus_a = ctx.saved_tensors
        sigmoid_a = torch.sigmoid(a)
        grad_log_mu = grad_log_theta = None
        if ctx.needs_input_grad[0]:
            grad_log_mu = (sigmoid_a * grad).mul_(-theta).sum_to_size(log_mu.shape)
        if ctx.needs_input_grad[1]:
            gap = _softplus_minus_sigmoid(softplus_a, sigmoid_a, log_theta)
            grad_log_theta = gap.mul_(grad).mul_(-theta).sum_to_size(log_theta.shape)
        return grad_log_mu, grad_log_theta
