"""scVAE's constrained Poisson: rates are a softmax over genes times the library size."""

from typing import ClassVar

from torch import Tensor
from torch.distributions import constraints

from ._poisson import Poisson
from ._utils import library_scaled


class ConstrainedPoisson(Poisson):
    r"""Poisson whose rates over the genes of a cell sum to the cell's library size.

    .. math::

        \lambda_g = L \operatorname{softmax}(\ell)_g, \qquad
        \log\lambda_g = \operatorname{log\_softmax}(\ell)_g + \log L,

    with logits :math:`\ell` over the last (gene) axis and :math:`L` the observed total count
    of the cell, then :math:`\log p(x_g) = x_g \log\lambda_g - \lambda_g - \log\Gamma(x_g + 1)`
    as for :class:`~scvae.distributions.Poisson`. ``scale`` is :math:`\operatorname{softmax}(\ell)`.

    Parameters
    ----------
    logits
        Unnormalised log-proportions, shape ``(..., cells, genes)``.
    library
        Positive library size per cell, shape ``(..., cells, 1)``.
    validate_args
        Check arguments and values against the constraints.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "log_rate": constraints.real,
        "library": constraints.positive,
    }

    def __init__(self, logits: Tensor, library: Tensor, validate_args: bool = False) -> None:
        self.logits = logits
        self.library = library
        log_scale, log_rate = library_scaled(logits, library)
        super().__init__(log_rate, log_scale=log_scale, validate_args=validate_args)
