"""The GMVAE's prior p(y) p(z | y): a mixture of diagonal Gaussians over the latent space."""

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal

from ._encoder import MIN_SCALE

#: Initial standard deviation of every component (through its softplus parametrisation).
INITIAL_SCALE = 1.0


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """:math:`\\log(e^y - 1)`, computed stably, so that ``softplus`` of it gives back ``y``."""
    return y + torch.log(-torch.expm1(-y))


class MixturePrior(nn.Module):
    """:math:`p(y = k) = \\pi_k`, :math:`p(z \\mid y = k) = N(\\mu_k, \\operatorname{diag}
    \\sigma_k^2)`.

    The means, the scales (``softplus`` of a free parameter, plus a floor) and, with
    ``learn_weights``, the weights (``softmax`` of logits) are parameters; :meth:`set` places
    the components where a clustering of the latent space says.

    Parameters
    ----------
    n_components
        Number of components K.
    n_latent
        Dimension of z.
    learn_weights
        Learn the weights; otherwise they stay uniform.
    spread
        Standard deviation of the random initial means (0 puts every component at the origin).
    """

    def __init__(
        self, n_components: int, n_latent: int, learn_weights: bool = False, spread: float = 1.0
    ):
        super().__init__()
        self.n_components, self.n_latent = n_components, n_latent
        self.means = nn.Parameter(torch.randn(n_components, n_latent) * spread)
        raw_scale = _inverse_softplus(torch.tensor(INITIAL_SCALE - MIN_SCALE, dtype=torch.float64))
        self.scales_raw = nn.Parameter(torch.full((n_components, n_latent), raw_scale.item()))
        logits = torch.zeros(n_components)
        if learn_weights:
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits)

    @property
    def learns_weights(self) -> bool:
        """Whether the weights are learned (a parameter) rather than uniform (a buffer)."""
        return isinstance(self.logits, nn.Parameter)

    @property
    def scales(self) -> torch.Tensor:
        """Standard deviations :math:`\\sigma_k`, ``(K, n_latent)``."""
        return nn.functional.softplus(self.scales_raw) + MIN_SCALE

    def log_weights(self) -> torch.Tensor:
        """:math:`\\log \\pi_k`, ``(K,)``."""
        return torch.log_softmax(self.logits, dim=-1)

    def components(self) -> Normal:
        """p(z | y) for every component, batch shape ``(K, 1, n_latent)``."""
        return Normal(self.means[:, None, :], self.scales[:, None, :], validate_args=False)

    @torch.no_grad()
    def set(self, means: np.ndarray, scales: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Place the components: means and standard deviations ``(K, n_latent)``, weights
        ``(K,)`` (used only when the weights are learned).

        Parameters
        ----------
        means
            Component means.
        scales
            Component standard deviations; values below the floor are raised to it.
        weights
            Positive component weights (normalised here).
        """
        device = self.means.device
        self.means.copy_(torch.as_tensor(np.asarray(means), device=device))
        scales = torch.as_tensor(np.asarray(scales), dtype=self.means.dtype, device=device)
        self.scales_raw.copy_(_inverse_softplus((scales - MIN_SCALE).clamp(min=1e-6)))
        if weights is not None and self.learns_weights:
            weights = np.asarray(weights, dtype=np.float64)
            self.logits.copy_(torch.as_tensor(np.log(weights / weights.sum()), device=device))

    def kl_from(self, qz: Normal) -> torch.Tensor:
        """:math:`KL(q(z \\mid x) \\| p(z \\mid y = k))` for every component, ``(..., cells, K)``.

        Closed form for diagonal Gaussians, summed over the latent dimensions.

        Parameters
        ----------
        qz
            The posterior q(z | x), batch shape ``(..., cells, n_latent)``.
        """
        loc, scale = qz.loc.unsqueeze(-2), qz.scale.unsqueeze(-2)  # (..., cells, 1, L)
        ratio = (scale / self.scales) ** 2
        distance = ((loc - self.means) / self.scales) ** 2
        return 0.5 * (ratio + distance - 1 - torch.log(ratio)).sum(-1)

    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`\\log \\pi_k + \\log p(z \\mid y = k)`, ``(..., cells, K)``."""
        standardised = (z.unsqueeze(-2) - self.means) / self.scales
        log_density = -0.5 * standardised**2 - torch.log(self.scales) - 0.5 * math.log(2 * math.pi)
        return log_density.sum(-1) + self.log_weights()

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`\\log p(z) = \\log \\sum_k \\pi_k p(z \\mid k)`, ``(..., cells)``."""
        return torch.logsumexp(self.component_log_prob(z), dim=-1)

    @torch.no_grad()
    def sample(self, n: int, cluster: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` draws of (z, y): y from the weights (or fixed to ``cluster``), z from p(z | y)."""
        device = self.means.device
        if cluster is None:
            y = torch.distributions.Categorical(logits=self.logits).sample((n,)).to(device)
        else:
            y = torch.full((n,), cluster, device=device, dtype=torch.long)
        z = self.means[y] + self.scales[y] * torch.randn(n, self.n_latent, device=device)
        return z, y
