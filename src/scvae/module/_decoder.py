"""Count decoder p(x | z): an MLP followed by the parameters of a count likelihood."""

from collections.abc import Sequence

import torch
from torch import nn

from scvae.distributions import (
    CountDistribution,
    PiecewiseCategorical,
    get_likelihood,
    library_scaled,
)

from ._networks import MLP
from ._parameter_heads import parameter_head


class CountDecoder(nn.Module):
    """Decode z into a count distribution over genes.

    Means are either ``softmax(logits) * library`` with the cell's observed total count as
    library (``scale_by_library=True``, scVAE's constrained form and scvi-tools' default) or free
    (``log mean = logits``, scVAE's unconstrained form). The likelihood's other parameters
    come from the heads its row of :data:`scvae.distributions.LIKELIHOODS` asks for. All
    parameters are produced in log space: the likelihoods never see a rate that underflowed to
    zero.

    Parameters
    ----------
    n_latent
        Dimension of z.
    n_hidden
        Hidden layer widths.
    n_output
        Number of genes.
    likelihood
        A name in :data:`scvae.distributions.LIKELIHOODS`.
    dispersion
        ``"gene"``, ``"gene-batch"`` or ``"gene-cell"``: how a dispersion parameter varies.
    scale_by_library
        Scale means by the observed library size (always, for a likelihood defined so).
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

    #: State-dict version: 2 keeps the likelihood's parameters under ``parameter_heads``;
    #: version 1 (scvae 0.1.0) held them as ``log_theta``, ``log_theta_head`` and ``zi_logits``.
    _version = 2

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
        self.likelihood = get_likelihood(likelihood)
        self.scale_by_library = scale_by_library or bool(self.likelihood.library_scaled)
        self.piecewise_cutoff = piecewise_cutoff
        self.n_output = n_output
        self.network = MLP(n_latent, n_hidden, (n_batch,), use_batch_norm, dropout_rate)
        width = self.network.n_output
        self.mean_logits = nn.Linear(width, n_output)
        self.parameter_heads = nn.ModuleDict(
            {
                name: parameter_head(kind, dispersion, width, n_output, n_batch)
                for name, kind in self.likelihood.parameters.items()
            }
        )
        if piecewise_cutoff is not None:
            if not self.likelihood.piecewise:
                raise ValueError(f"No piecewise-categorical variant of {likelihood!r}.")
            self.piece_logits = nn.Linear(width, n_output * (piecewise_cutoff + 1))

    def forward(
        self, z: torch.Tensor, library: torch.Tensor, batch_index: torch.Tensor
    ) -> CountDistribution:
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
        logits = _full_precision(self.mean_logits(h))
        log_mean, log_scale = logits, None  # scale: the mean normalised over genes
        if self.scale_by_library:
            # Observed library sizes are positive for every valid cell; the floor keeps an
            # empty cell from turning 0 * log(0) into NaN.
            log_scale, log_mean = library_scaled(logits, library.clamp(min=1.0))
        parameters = {
            name: _full_precision(head(h, batch_index))
            for name, head in self.parameter_heads.items()
        }
        base = self.likelihood.distribution(log_mean, log_scale=log_scale, **parameters)
        if self.piecewise_cutoff is None:
            return base
        piece_logits = _full_precision(self.piece_logits(h)).unflatten(-1, (self.n_output, -1))
        return PiecewiseCategorical(base, piece_logits)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        """Also load a decoder saved by scvae 0.1.0 (state-dict version 1)."""
        if (local_metadata.get("version") or 1) < 2:
            for name in self.likelihood.parameters:
                old_names = {f"{name}": "value", f"{name}_head.weight": "weight"}
                old_names |= {f"{name}.weight": "weight", f"{name}_head.bias": "bias"}
                old_names |= {f"{name}.bias": "bias"}
                for old, new in old_names.items():
                    if prefix + old in state_dict:
                        value = state_dict.pop(prefix + old)
                        state_dict[f"{prefix}parameter_heads.{name}.{new}"] = value
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)


def _full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 if mixed precision gave it in half: the networks may run in
    half precision, the likelihood's log-gamma and log terms need float32's digits."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor
