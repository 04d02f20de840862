"""scVAE's constrained Poisson: rates are a softmax over genes times the library size."""

from torch import Tensor

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

    The constructor takes the log-rates and the log normalised expression, as
    :class:`~scvae.distributions.Poisson` does (the decoder computes both);
    :meth:`from_logits` builds the distribution from :math:`\ell` and :math:`L`.

    Parameters
    ----------
    log_rate
        :math:`\log\lambda`, shape ``(..., cells, genes)``.
    log_scale
        :math:`\operatorname{log\_softmax}(\ell)`; defaults to the log of the rates
        normalised over genes, which is the same.
    validate_args
        Check arguments and values against the constraints.
    """

    @classmethod
    def from_logits(
        cls, logits: Tensor, library: Tensor, validate_args: bool = False
    ) -> "ConstrainedPoisson":
        """The constrained Poisson of gene logits :math:`\\ell` and library sizes :math:`L`.

        Parameters
        ----------
        logits
            Gene logits, ``(..., cells, genes)``.
        library
            Positive library sizes, ``(..., cells, 1)``.
        validate_args
            Check arguments and values against the constraints.
        """
        log_scale, log_rate = library_scaled(logits, library)
        return cls(log_rate, log_scale=log_scale, validate_args=validate_args)
