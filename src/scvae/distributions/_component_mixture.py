"""A finite mixture over a leading component axis, as produced by the GMVAE decoder."""

import torch
from torch.distributions import Distribution

from scvae._counts import dense_counts

from ._base import CountDistribution


class ComponentMixture(CountDistribution):
    """Mixture of per-component count distributions with per-cell weights.

    ``components`` has batch shape ``(..., K, cells, genes)`` (the GMVAE decodes all K
    components in one pass) and ``log_weights`` is ``(cells, K)``, typically log q(y | x).
    The mixture has batch shape ``(..., cells, genes)``:
    :math:`p(x) = \\sum_k w_k\\, p_k(x)`.

    Parameters
    ----------
    components
        Distribution with the component axis third from last in its batch shape.
    log_weights
        Log mixture weights per cell, normalised over the last axis.
    """

    arg_constraints = {}  # noqa: RUF012 - torch's Distribution API declares it as a class attribute

    def __init__(self, components: Distribution, log_weights: torch.Tensor):
        self.components = components
        self.log_weights = log_weights
        shape = components.batch_shape
        super().__init__(batch_shape=shape[:-3] + shape[-2:], validate_args=False)

    def expand(self, batch_shape: torch.Size | tuple[int, ...], _instance=None):
        """:meth:`CountDistribution.expand`: the components expanded around their component
        axis, the weights along the cells.

        Parameters
        ----------
        batch_shape
            The new batch shape ``(..., cells, genes)``; the current one must broadcast to it.
        """
        batch_shape = self._expandable_to(batch_shape)
        n_components = self.log_weights.shape[-1]
        components = self.components.expand((*batch_shape[:-2], n_components, *batch_shape[-2:]))
        return type(self)(components, self.log_weights.expand(batch_shape[-2], n_components))

    def _weights(self) -> torch.Tensor:
        """Weights as ``(K, cells, 1)`` to broadcast against component tensors."""
        return self.log_weights.exp().T.unsqueeze(-1)

    def likelihood_parameters(self) -> dict[str, torch.Tensor]:
        """``"mean"``: the mixture's mean; ``"component_weights"``: the weights ``(cells,
        K)``; each component's parameters prefixed ``"component_"``, with the component
        axis before the cells."""
        mean = self.mean
        weights = self.log_weights.exp().expand(*mean.shape[:-1], self.log_weights.shape[-1])
        components = {
            f"component_{name}": value
            for name, value in self.components.likelihood_parameters().items()
        }
        return {"mean": mean, "component_weights": weights, **components}

    @property
    def mean(self) -> torch.Tensor:
        """:math:`\\sum_k w_k E_k[x]`."""
        return (self._weights() * self.components.mean).sum(-3)

    @property
    def variance(self) -> torch.Tensor:
        """Law of total variance over the components, :math:`\\sum_k w_k (\\mathrm{Var}_k +
        (E_k - E)^2)` (not :math:`E[x^2] - E[x]^2`, whose terms cancel in float32 at large
        counts)."""
        weights, means = self._weights(), self.components.mean
        spread = (means - self.mean.unsqueeze(-3)) ** 2
        return (weights * (self.components.variance + spread)).sum(-3)

    def get_normalized(self, key: str) -> torch.Tensor:
        """``"mu"``: the mixture of the components' mean count parameters (for zero-inflated
        components their :math:`\\mu`, which leaves the extra zeros out, as for one
        distribution); ``"scale"``: the mixture of their normalised expression.

        Parameters
        ----------
        key
            ``"mu"`` or ``"scale"``.
        """
        if key == "mu":
            return (self._weights() * self.components.get_normalized("mu")).sum(-3)
        return super().get_normalized(key)

    @property
    def scale(self) -> torch.Tensor:
        """Mixture of the components' normalised expression."""
        return (self._weights() * self.components.get_normalized("scale")).sum(-3)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Per-gene log-likelihood :math:`\\log \\sum_k w_k p_k(x)` (genes treated apart).

        Parameters
        ----------
        value
            Counts, ``(..., cells, genes)``, dense or a torch sparse CSR ``(cells, genes)``
            matrix.
        """
        value = dense_counts(value)
        log_probs = self.components.log_prob(value.unsqueeze(-3))
        return torch.logsumexp(self.log_weights.T.unsqueeze(-1) + log_probs, dim=-3)

    def log_prob_sum(self, value: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of each cell under the mixture, :math:`\\log \\sum_k w_k \\prod_g
        p_k(x_g)`: one component for all of a cell's genes.

        Parameters
        ----------
        value
            Counts, ``(..., cells, genes)``, dense or a torch sparse CSR ``(cells, genes)``
            matrix.
        """
        if value.dim() > 2:  # leading (sample) axes go before the component axis
            value = dense_counts(value).unsqueeze(-3)
        log_probs = self.components.log_prob_sum(value)  # (..., K, cells)
        return torch.logsumexp(self.log_weights.T + log_probs, dim=-2)

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:  # noqa: B008
        """Draw a component per cell from the weights, then counts from that component.

        Parameters
        ----------
        sample_shape
            Leading shape of the draws (torch's ``sample_shape``).
        """
        counts = self.components.sample(sample_shape)  # (*sample, ..., K, cells, genes)
        n_leading = counts.dim() - 3
        cluster = torch.distributions.Categorical(logits=self.log_weights).sample(
            counts.shape[:n_leading]
        )  # (*leading, cells)
        index = (
            cluster.unsqueeze(-2).unsqueeze(-1).expand(*counts.shape[:-3], 1, *counts.shape[-2:])
        )
        return counts.gather(-3, index).squeeze(-3)
