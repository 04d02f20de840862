"""Count decoder p(x | z): an MLP followed by the parameters of a count likelihood."""

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Distribution

from scvae._constants import DISPERSED_LIKELIHOODS, PIECEWISE_LIKELIHOODS
from scvae.distributions import (
    ConstrainedPoisson,
    NegativeBinomial,
    PiecewiseCategorical,
    Poisson,
    ZeroInflatedNegativeBinomial,
    ZeroInflatedPoisson,
)
from scvae.distributions._utils import library_scaled

from ._networks import MLP


class CountDecoder(nn.Module):
    """Decode z into a count distribution over genes.

    Means are either ``softmax(logits) * library`` with the cell's observed total count as
    library (``scale_by_library=True``, scVAE's constrained form and scvi-tools' default) or free
    (``log mean = logits``, scVAE's unconstrained form). All parameters are produced in log
    space: the likelihoods never see a rate that underflowed to zero.

    Parameters
    ----------
    n_latent
        Dimension of z.
    n_hidden
        Hidden layer widths.
    n_output
        Number of genes.
    likelihood
        One of ``"poisson"``, ``"nb"``, ``"zip"``, ``"zinb"``, ``"constrained_poisson"``.
    dispersion
        ``"gene"``, ``"gene-batch"`` or ``"gene-cell"`` (NB and ZINB only).
    scale_by_library
        Scale means by the observed library size.
    piecewise_cutoff
        If set to k, counts below k come from a categorical distribution (scVAE's piecewise
        categorical variant).
    n_batch
        Number of batches; the decoder is conditioned on the batch when there are several.
    use_batch_norm
        Batch norm on hidden layers.
    dropout_rate
        Dropout on hidden layers.
    """

    def __init__(
        self,
        n_latent: int,
        n_hidden: Sequence[int],
        n_output: int,
        likelihood: str = "nb",
        dispersion: str = "gene",
        scale_by_library: bool = True,
        piecewise_cutoff: int | None = None,
        n_batch: int = 1,
        use_batch_norm: bool = True,
        dropout_rate: float = 0.0,
    ):
        super().__init__()
        self.likelihood = likelihood
        self.dispersion = dispersion
        self.scale_by_library = scale_by_library or likelihood == "constrained_poisson"
        self.piecewise_cutoff = piecewise_cutoff
        self.n_output = n_output
        self.network = MLP(n_latent, n_hidden, (n_batch,), use_batch_norm, dropout_rate)
        width = self.network.n_output
        self.mean_logits = nn.Linear(width, n_output)
        if likelihood in DISPERSED_LIKELIHOODS:
            if dispersion == "gene":
                self.log_theta = nn.Parameter(torch.randn(n_output))
            elif dispersion == "gene-batch":
                self.log_theta = nn.Parameter(torch.randn(n_batch, n_output))
            else:
                self.log_theta_head = nn.Linear(width, n_output)
        if likelihood in ("zip", "zinb"):
            self.zi_logits = nn.Linear(width, n_output)
        if piecewise_cutoff is not None:
            if likelihood not in PIECEWISE_LIKELIHOODS:
                raise ValueError(f"No piecewise-categorical variant of {likelihood!r}.")
            self.piece_logits = nn.Linear(width, n_output * (piecewise_cutoff + 1))

    def forward(
        self, z: torch.Tensor, library: torch.Tensor, batch_index: torch.Tensor
    ) -> Distribution:
        """Return p(x | z) for latent ``z`` (``(..., cells, n_latent)``).

        Parameters
        ----------
        z
            Latent samples; leading sample/component dimensions broadcast.
        library
            Observed total count per cell, shape ``(cells, 1)``.
        batch_index
            Integer batch code per cell, shape ``(cells,)``.
        """
        h = self.network(z, (batch_index,))
        logits = self.mean_logits(h)
        # Observed library sizes are positive for every valid cell; the floor keeps an empty
        # cell from turning 0 * log(0) into NaN.
        library = library.clamp(min=1.0)
        if self.likelihood == "constrained_poisson":
            base = ConstrainedPoisson(logits, library)
        else:
            log_mean, log_scale = logits, None  # scale: the mean normalised over genes
            if self.scale_by_library:
                log_scale, log_mean = library_scaled(logits, library)
            base = self._base(h, log_mean, log_scale, batch_index)
        if self.piecewise_cutoff is None:
            return base
        piece_logits = self.piece_logits(h).unflatten(-1, (self.n_output, -1))
        return PiecewiseCategorical(base, piece_logits)

    def _base(
        self, h: torch.Tensor, log_mean: torch.Tensor, log_scale: torch.Tensor | None, batch_index
    ) -> Distribution:
        if self.likelihood == "poisson":
            return Poisson(log_mean, log_scale=log_scale)
        if self.likelihood == "zip":
            return ZeroInflatedPoisson(log_mean, self.zi_logits(h), log_scale=log_scale)
        log_theta = self._log_theta(h, batch_index)
        if self.likelihood == "nb":
            return NegativeBinomial(log_mean, log_theta, log_scale=log_scale)
        return ZeroInflatedNegativeBinomial(
            log_mean, log_theta, self.zi_logits(h), log_scale=log_scale
        )

    def _log_theta(self, h: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        if self.dispersion == "gene":
            return self.log_theta
        if self.dispersion == "gene-batch":
            return self.log_theta[batch_index]
        return self.log_theta_head(h)
