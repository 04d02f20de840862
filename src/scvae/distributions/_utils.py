"""Log-space helpers shared by the count likelihoods."""

import torch
from torch import Tensor


def log_softmax(logits: Tensor) -> Tensor:
    r"""Log-softmax over the last axis, accurate also for the dominant class.

    :math:`\log p_i = (l_i - m) - \operatorname{log1p}\left(\sum_{j \ne j^*} e^{l_j - m}\right)`
    with :math:`m = l_{j^*} = \max_j l_j`. Unlike ``torch.log_softmax``, which takes the log of a
    sum that includes the term 1, this keeps full relative precision when
    :math:`p_{j^*} \to 1` (:math:`\log p_{j^*} \approx -10^{-20}` instead of a rounded 0).
    """
    max_logit, argmax = logits.max(dim=-1, keepdim=True)
    shifted = logits - max_logit
    others = shifted.exp().scatter(-1, argmax, 0.0).sum(dim=-1, keepdim=True)
    return shifted - torch.log1p(others)


def library_scaled(logits: Tensor, library: Tensor) -> tuple[Tensor, Tensor]:
    r"""Log normalised expression and log mean of counts spread over genes by ``logits``.

    :math:`\log s = \operatorname{log\,softmax}(l)` over genes and
    :math:`\log \mu = \log s + \log L` for a cell's library size :math:`L`.
    """
    log_scale = torch.log_softmax(logits, dim=-1)
    return log_scale, log_scale + torch.log(library)


def zero_inflated_log_prob(
    value: Tensor, base_log_prob: Tensor, base_log_prob_zero: Tensor, zi_logits: Tensor
) -> Tensor:
    r"""Log-probability of a zero-inflated count distribution.

    With zero-inflation logits :math:`\eta` (zero-inflation probability :math:`\sigma(\eta)`) and
    :math:`\ell = -\log p_{\text{base}}(0) \ge 0`,

    .. math::

        \log p(0) = \log\left(\sigma(\eta) + \sigma(-\eta) e^{-\ell}\right),
        \qquad \log p(x > 0) = -\operatorname{softplus}(\eta) + \log p_{\text{base}}(x).

    :math:`\log p(0)` is evaluated as ``logaddexp(zi_logits, -ell) - softplus(zi_logits)``
    except where :math:`p(0)` is close to 1: there that difference of two nearly equal numbers
    loses all relative precision, so it is evaluated as :math:`\operatorname{log1p}(-q)` with
    :math:`q = 1 - p(0) = \sigma(-\eta)\,(-\operatorname{expm1}(-\ell)) \le 1/2`. Both branches
    are finite with finite gradients everywhere.
    """
    q = torch.sigmoid(-zi_logits) * -torch.expm1(base_log_prob_zero)
    near_one = torch.log1p(-q.clamp(max=0.5))
    general = torch.logaddexp(zi_logits, base_log_prob_zero) - torch.nn.functional.softplus(
        zi_logits
    )
    log_prob_zero = torch.where(q <= 0.5, near_one, general)
    log_prob_positive = base_log_prob - torch.nn.functional.softplus(zi_logits)
    return torch.where(value == 0, log_prob_zero, log_prob_positive)


def normalized_expression(log_scale: Tensor | None, log_mean: Tensor) -> Tensor:
    """``exp(log_scale)`` if given, else the mean normalised over the last (gene) axis.

    The default is computed as ``softmax(log_mean)``, i.e. ``mean / mean.sum(-1, keepdim=True)``
    without the 0 / 0 that tiny means would give. The distributions evaluate it on access
    only: training never reads it, and it costs a full (cells x genes) exponential.
    """
    if log_scale is not None:
        return log_scale.exp()
    return torch.softmax(log_mean, dim=-1)


def on_nonzero_counts(value: Tensor, function, *parameters: Tensor) -> Tensor:
    r"""``function(value, *parameters)`` where ``value > 0``, and 0 where ``value == 0``.

    For the lgamma terms of the count likelihoods, which vanish at a zero count:
    :math:`\log\Gamma(0 + \theta) - \log\Gamma(\theta) - \log\Gamma(1) = 0`. Single-cell
    matrices are 90-98% zeros, so evaluating lgamma (the most expensive operation of the
    likelihood, forward and backward) only at the non-zero counts saves most of that work. The
    result equals the dense formula exactly: the skipped entries are exact zeros there too.
    """
    shape = torch.broadcast_shapes(value.shape, *(p.shape for p in parameters))
    value = value.expand(shape)
    nonzero = value > 0
    if bool(nonzero.all()):
        return function(value, *(p.expand(shape) for p in parameters))
    selected = function(value[nonzero], *(p.expand(shape)[nonzero] for p in parameters))
    return torch.zeros(shape, dtype=selected.dtype, device=selected.device).masked_scatter(
        nonzero, selected
    )
