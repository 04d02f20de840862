"""scVAE's piecewise categorical variant of a count distribution."""

from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, constraints

from scvae._counts import dense_counts

from ._base import CountDistribution
from ._utils import log_softmax


class PiecewiseCategorical(CountDistribution):
    r"""Categorical over the counts :math:`0, \dots, k-1` plus a shifted tail distribution.

    With cutoff :math:`k` (``logits.shape[-1] - 1``), class probabilities
    :math:`p = \operatorname{softmax}(\text{logits})` over :math:`k + 1` classes and a base count
    distribution :math:`q`,

    .. math::

        P(X = x) = \begin{cases} p_x & x < k, \\ p_k\, q(x - k) & x \ge k, \end{cases}

    i.e. the last class carries the mass of the tail, distributed as :math:`k + Y` with
    :math:`Y \sim q`. Mean :math:`\sum_{i<k} i p_i + p_k (k + E[Y])`; the variance follows from
    :math:`E[X^2] = \sum_{i<k} i^2 p_i + p_k (\operatorname{Var}[Y] + (k + E[Y])^2)`.

    Parameters
    ----------
    base
        Tail count distribution (e.g. :class:`~scvae.distributions.Poisson`,
        :class:`~scvae.distributions.NegativeBinomial`,
        :class:`~scvae.distributions.ConstrainedPoisson`).
    logits
        Class logits of shape ``base.batch_shape + (k + 1,)``, :math:`k \\ge 1`; their leading
        axes may broadcast against ``base.batch_shape``, which is the whole batch shape.
    validate_args
        Check arguments and values against the constraints.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "logits": constraints.real_vector
    }

    def __init__(self, base: Distribution, logits: Tensor, validate_args: bool = False) -> None:
        if logits.shape[-1] < 2:
            raise ValueError(
                f"logits has {logits.shape[-1]} class(es) on its last axis; a cutoff k >= 1 "
                "needs k + 1 >= 2 (the counts 0, ..., k - 1 and the tail)."
            )
        batch_shape = torch.broadcast_shapes(base.batch_shape, logits.shape[:-1])
        if base.batch_shape != batch_shape:
            raise ValueError(
                f"The tail distribution's batch shape {tuple(base.batch_shape)} must be the "
                f"whole batch shape {tuple(batch_shape)} (one tail per count); expand its "
                "parameters to it."
            )
        self.base = base
        self.logits = logits
        self.cutoff = logits.shape[-1] - 1
        self.log_class_probs = log_softmax(logits)
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    def expand(self, batch_shape: torch.Size | tuple[int, ...], _instance=None):
        """:meth:`CountDistribution.expand`: the tail and the class logits expanded.

        Parameters
        ----------
        batch_shape
            The new batch shape; the current one must broadcast to it.
        """
        batch_shape = self._expandable_to(batch_shape)
        logits = self.logits.expand(*batch_shape, self.logits.shape[-1])
        return type(self)(self.base.expand(batch_shape), logits, self._validate_args)

    def _moments(self) -> tuple[Tensor, Tensor]:
        """Mean and variance, the latter by the law of total variance over the pieces."""
        k = self.cutoff
        probs = self.log_class_probs.exp()
        counts = torch.arange(k, dtype=probs.dtype, device=probs.device)
        head, tail = probs[..., :k], probs[..., k]
        tail_mean = k + self.base.mean
        mean = (head * counts).sum(-1) + tail * tail_mean
        # Var = p_k Var[Y] + sum_i p_i (i - m)^2 + p_k (k + E[Y] - m)^2: no E[X^2] - m^2,
        # which cancels in float32 for a tail of large mean.
        spread = (head * (counts - mean.unsqueeze(-1)) ** 2).sum(-1)
        variance = tail * (self.base.variance + (tail_mean - mean) ** 2) + spread
        return mean, variance

    def likelihood_parameters(self) -> dict[str, Tensor]:
        """``"mean"``: the mean count; ``"class_probabilities"``: :math:`p_0, \\dots, p_k`
        on an axis before the cells; the tail distribution's parameters prefixed ``"tail_"``."""
        probs = self.log_class_probs.exp().expand(*self.batch_shape, self.cutoff + 1)
        tail = {f"tail_{name}": value for name, value in self.base.likelihood_parameters().items()}
        return {"mean": self.mean, "class_probabilities": probs.movedim(-1, -3), **tail}

    @property
    def mean(self) -> Tensor:
        r""":math:`\sum_{i<k} i p_i + p_k (k + E[Y])`."""
        return self._moments()[0]

    @property
    def variance(self) -> Tensor:
        r""":math:`p_k \operatorname{Var}[Y] + \sum_{i<k} p_i (i - m)^2 + p_k (k + E[Y] - m)^2`
        with :math:`m` the mean (the law of total variance over the head and the tail)."""
        return self._moments()[1]

    @property
    def log_mean(self) -> Tensor:
        r""":math:`\log\big(\sum_{0<i<k} i p_i + p_k (k + E[Y])\big)`, in log space (the
        tail's mean may exceed float32)."""
        k = self.cutoff
        log_probs = self.log_class_probs
        log_counts = torch.arange(1, k, dtype=log_probs.dtype, device=log_probs.device).log()
        head = torch.logsumexp(log_probs[..., 1:k] + log_counts, dim=-1)
        log_k = torch.tensor(float(k), dtype=log_probs.dtype, device=log_probs.device).log()
        # scvae's likelihoods give their log-mean without exp; any other base its mean's log.
        log_tail_mean = getattr(self.base, "log_mean", None)
        if log_tail_mean is None:
            log_tail_mean = self.base.mean.log()
        tail = log_probs[..., k] + torch.logaddexp(log_k, log_tail_mean)
        return torch.logaddexp(head, tail).expand(self.batch_shape)

    @property
    def scale(self) -> Tensor:
        """The mean normalised over the last (gene) axis (a softmax of :attr:`log_mean`)."""
        return torch.softmax(self.log_mean, dim=-1)

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size | tuple[int, ...] = torch.Size()) -> Tensor:  # noqa: B008
        """Draw the class; the tail class draws :math:`k + Y` with :math:`Y \\sim q`.

        Parameters
        ----------
        sample_shape
            Leading shape of the draws (torch's ``sample_shape``).
        """
        shape = self._extended_shape(sample_shape)
        k = self.cutoff
        logits = self.log_class_probs.expand(*self.batch_shape, k + 1)
        classes = Categorical(logits=logits).sample(torch.Size(sample_shape))
        tail = k + self.base.sample(torch.Size(sample_shape))
        return torch.where(classes == k, tail.expand(shape), classes.to(tail.dtype))

    def log_prob(self, value: Tensor) -> Tensor:
        r""":math:`\log p_x` for :math:`x < k`, else :math:`\log p_k + \log q(x - k)`.

        Parameters
        ----------
        value
            Counts, ``(..., cells, genes)``, dense or a torch sparse CSR ``(cells, genes)``
            matrix.
        """
        value = dense_counts(value)
        if self._validate_args:
            self._validate_sample(value)
        k = self.cutoff
        log_probs = self.log_class_probs
        shape = torch.broadcast_shapes(value.shape, log_probs.shape[:-1])
        index = value.clamp(0, k).long().expand(shape).unsqueeze(-1)
        head = log_probs.expand(*shape, k + 1).gather(-1, index).squeeze(-1)
        tail = log_probs[..., k] + self.base.log_prob((value - k).clamp(min=0))
        return torch.where(value < k, head, tail)
