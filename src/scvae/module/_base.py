"""What every scvae module shares: its inputs, its count decoder, sampling and log p(x)."""

import math
from abc import abstractmethod
from collections.abc import Sequence

import torch
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass

from ._decoder import CountDecoder


def batch_codes(batch_index: torch.Tensor, transform_batch: int | None = None) -> torch.Tensor:
    """Batch indices of the cells (scvi-tools hands categorical codes over as ``(cells, 1)``
    floats), or ``transform_batch`` for every cell when it is given."""
    codes = batch_index.reshape(-1).long()
    if transform_batch is not None:
        codes = torch.full_like(codes, int(transform_batch))
    return codes


class CountModule(BaseModuleClass):
    """Base of the scvae modules: an encoder of ``log1p(x)`` and a count decoder.

    Subclasses build their networks (their order fixes the random initialisation), define
    ``inference``, ``generative`` and ``loss``, and give :meth:`marginal_ll` the importance
    weights of their inference model (:meth:`_log_importance_weights`).

    Parameters
    ----------
    n_input
        Number of genes.
    n_batch
        Number of batches (1 when no ``batch_key`` was registered).
    n_latent
        Dimension of z.
    encode_batch
        Also condition the encoder(s) on the batch.
    """

    #: Monte Carlo samples per forward pass of :meth:`marginal_ll` by default.
    mc_samples_per_pass: int = 100

    def __init__(self, n_input: int, n_batch: int, n_latent: int, encode_batch: bool):
        super().__init__()
        self.n_input, self.n_batch, self.n_latent = n_input, n_batch, n_latent
        self.encode_batch = encode_batch

    def _count_decoder(
        self,
        n_hidden: Sequence[int],
        likelihood: str,
        dispersion: str,
        scale_by_library: bool,
        piecewise_cutoff: int | None,
        use_batch_norm: bool,
    ) -> CountDecoder:
        """The decoder p(x | z), its hidden layers mirroring the encoder's ``n_hidden``."""
        return CountDecoder(
            self.n_latent,
            list(reversed(n_hidden)),
            self.n_input,
            likelihood=likelihood,
            dispersion=dispersion,
            scale_by_library=scale_by_library,
            piecewise_cutoff=piecewise_cutoff,
            n_batch=self.n_batch,
            use_batch_norm=use_batch_norm,
        )

    def _get_inference_input(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"x": tensors[REGISTRY_KEYS.X_KEY], "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY]}

    def _encoder_categories(self, batch_index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (batch_codes(batch_index),) if self.encode_batch else ()

    @torch.inference_mode()
    def sample(
        self,
        tensors: dict[str, torch.Tensor],
        n_samples: int = 1,
        generative_kwargs: dict | None = None,
    ) -> torch.Tensor:
        """Posterior predictive counts, ``(cells, genes)`` or ``(cells, genes, n_samples)``."""
        _, generative_outputs = self.forward(
            tensors,
            inference_kwargs={"n_samples": n_samples},
            generative_kwargs=generative_kwargs,
            compute_loss=False,
        )
        counts = generative_outputs["px"].sample().cpu()
        return counts if n_samples == 1 else counts.permute(1, 2, 0)

    @torch.inference_mode()
    def marginal_ll(
        self,
        tensors: dict[str, torch.Tensor],
        n_mc_samples: int = 1000,
        return_mean: bool = False,
        n_mc_samples_per_pass: int | None = None,
    ) -> torch.Tensor | float:
        """Importance-weighted estimate of log p(x):
        :math:`\\log \\frac{1}{S} \\sum_s w_s`, with the weights :math:`w_s` of the
        subclass's inference model (see its :meth:`_log_importance_weights`), drawn
        ``n_mc_samples_per_pass`` at a time (``mc_samples_per_pass`` by default) so that
        memory stays bounded."""
        per_pass = n_mc_samples_per_pass or self.mc_samples_per_pass
        log_weights = []
        remaining = n_mc_samples
        while remaining > 0:
            n = min(per_pass, remaining)
            log_weights.append(self._log_importance_weights(tensors, n))
            remaining -= n
        log_px = torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(n_mc_samples)
        return log_px.mean().item() if return_mean else log_px.cpu()

    @abstractmethod
    def _log_importance_weights(
        self, tensors: dict[str, torch.Tensor], n_samples: int
    ) -> torch.Tensor:
        """Log importance weights of ``n_samples`` draws per cell, ``(n_samples, cells)``."""
