"""What every scvae count likelihood provides beyond :class:`torch.distributions.Distribution`."""

from torch import Tensor
from torch.distributions import Distribution, constraints


class CountDistribution(Distribution):
    """Base class of the count likelihoods over ``(..., cells, genes)``.

    Subclasses implement ``log_prob`` (per gene), ``mean``, ``variance``, ``scale`` (the
    normalised expression) and ``sample``; this class adds what the models need on top:
    the log-likelihood of each cell summed over its genes (:meth:`log_prob_sum`, which a
    subclass may compute faster) and scvi-tools' ``get_normalized``.
    """

    support = constraints.nonnegative_integer

    @property
    def scale(self) -> Tensor:
        """Normalised expression over the last (gene) axis."""
        raise NotImplementedError

    def log_prob_sum(self, value: Tensor) -> Tensor:
        """Log-likelihood of each cell, ``log_prob(value).sum(-1)``.

        Parameters
        ----------
        value
            Counts, dense or a torch sparse CSR ``(cells, genes)`` matrix.
        """
        return self.log_prob(value).sum(-1)

    def get_normalized(self, key: str) -> Tensor:
        """``"mu"``: the mean; ``"scale"``: the normalised expression (scvi-tools' convention)."""
        if key == "mu":
            return self.mean
        if key == "scale":
            return self.scale
        raise ValueError(f"normalized key {key!r} not recognized, use 'mu' or 'scale'")
