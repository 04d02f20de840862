"""Gaussian encoder q(z | x)."""

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Normal

from ._networks import MLP

#: Floor on the posterior standard deviation, keeps the KL term and its gradient finite.
MIN_SCALE = 1e-4


class GaussianEncoder(nn.Module):
    """Diagonal Gaussian posterior over the latent variable from an MLP.

    The standard deviation is ``softplus(.) + 1e-4``: unlike ``exp(log_var)`` it cannot
    overflow, so a deep encoder's large pre-activations give large, finite scales.

    Parameters
    ----------
    n_input
        Width of the input (number of genes); the input may be sparse
        (:class:`~scvae.module.CountInputLinear`).
    n_hidden
        Hidden layer widths.
    n_latent
        Dimension of z.
    n_categories
        Categories of covariates injected into every hidden layer.
    use_batch_norm
        Batch norm on hidden layers.
    dropout_rate
        Dropout on hidden layers.
    """

    def __init__(
        self,
        n_input: int,
        n_hidden: Sequence[int],
        n_latent: int,
        n_categories: Sequence[int] = (),
        use_batch_norm: bool = True,
        dropout_rate: float = 0.1,
    ):
        super().__init__()
        self.network = MLP(
            n_input, n_hidden, n_categories, use_batch_norm, dropout_rate, count_input=True
        )
        self.mean = nn.Linear(self.network.n_output, n_latent)
        self.scale = nn.Linear(self.network.n_output, n_latent)

    def forward(
        self,
        x: torch.Tensor,
        categories: Sequence[torch.Tensor] = (),
        first_layer_offset: torch.Tensor | None = None,
    ) -> Normal:
        """Return q(z | x) for encoder input ``x``.

        Parameters
        ----------
        x
            Encoder input (already log1p-transformed), ``(..., n_input)``, or a torch sparse
            CSR ``(cells, n_input)`` matrix.
        categories
            One integer tensor of shape ``(cells,)`` per covariate given in ``n_categories``.
        first_layer_offset
            Added to the first layer's pre-activation (see :meth:`~scvae.module.MLP.forward`).
        """
        h = self.network(x, categories, first_layer_offset)
        scale = nn.functional.softplus(self.scale(h)) + MIN_SCALE
        # Positive by construction: no argument validation (a few operations and a host sync
        # per step); a NaN goes on to the training loss, where the non-finite guard names it.
        return Normal(self.mean(h), scale, validate_args=False)
