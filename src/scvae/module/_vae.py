"""The VAE module: a Gaussian-prior variational autoencoder of raw counts (pure torch)."""

from collections.abc import Sequence

import torch
from scvi import REGISTRY_KEYS
from scvi.module.base import LossOutput, auto_move_data
from torch.distributions import Distribution, Normal, kl_divergence

from scvae._counts import library_size

from ._base import CountModule, batch_codes
from ._encoder import GaussianEncoder
from ._networks import batch_norm_places


class VAEModule(CountModule):
    """Variational autoencoder with a standard normal prior and a count likelihood.

    Generative model: :math:`z \\sim N(0, I)`, :math:`x \\mid z \\sim p_\\theta(x \\mid z)`.
    Inference model: :math:`q_\\phi(z \\mid x) = N(\\mu_\\phi(x), \\sigma^2_\\phi(x))` computed from
    ``log1p(x)``. The loss is the negative ELBO per cell,
    :math:`-E_q[\\log p(x \\mid z)] + \\beta\\,KL(q(z \\mid x) \\| p(z))`, with :math:`\\beta`
    the KL warm-up weight from the training plan.

    Parameters
    ----------
    n_input
        Number of genes.
    n_batch
        Number of batches (1 when no ``batch_key`` was registered).
    n_latent
        Dimension of z.
    n_hidden
        Hidden layer widths of the encoder; the decoder mirrors them.
    likelihood
        Count likelihood, see :class:`~scvae.module.CountDecoder`.
    dispersion
        Dispersion parametrisation for NB and ZINB.
    scale_by_library
        Scale the decoder means by the observed library size.
    piecewise_cutoff
        Cutoff of the piecewise-categorical variant, or ``None``.
    use_batch_norm
        Which networks batch-normalise their hidden layers: ``"encoder"``, ``"decoder"``,
        ``"both"`` or ``"none"`` (``True`` and ``False`` mean ``"both"`` and ``"none"``).
    dropout_rate
        Dropout on the encoder's hidden layers.
    encode_batch
        Also condition the encoder on the batch.
    """

    def __init__(
        self,
        n_input: int,
        n_batch: int = 1,
        n_latent: int = 10,
        n_hidden: Sequence[int] = (128,),
        likelihood: str = "nb",
        dispersion: str = "gene",
        scale_by_library: bool = True,
        piecewise_cutoff: int | None = None,
        use_batch_norm: bool | str = "encoder",
        dropout_rate: float = 0.1,
        encode_batch: bool = False,
    ):
        super().__init__(n_input, n_batch, n_latent, encode_batch)
        encoder_categories = (n_batch,) if encode_batch else ()
        encoder_norm, decoder_norm = batch_norm_places(use_batch_norm)
        self.encoder = GaussianEncoder(
            n_input, n_hidden, n_latent, encoder_categories, encoder_norm, dropout_rate
        )
        self.decoder = self._count_decoder(
            n_hidden, likelihood, dispersion, scale_by_library, piecewise_cutoff, decoder_norm
        )

    def _get_generative_input(
        self, tensors: dict[str, torch.Tensor], inference_outputs: dict
    ) -> dict[str, torch.Tensor]:
        return {
            "z": inference_outputs["z"],
            "library": inference_outputs["library"],
            "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY],
        }

    @auto_move_data
    def inference(
        self, x: torch.Tensor, batch_index: torch.Tensor, n_samples: int = 1
    ) -> dict[str, torch.Tensor | Distribution]:
        """Encode counts ``x`` (dense, or torch sparse CSR) into q(z | x) and draw
        ``n_samples`` reparameterised samples.

        Parameters
        ----------
        x
            Counts of the minibatch, ``(cells, genes)``.
        batch_index
            Batch code of each cell, as scvi-tools hands it over (``(cells, 1)``).
        n_samples
            Draws of z per cell; more than one adds a leading sample axis.
        """
        qz = self.encoder(torch.log1p(x), self._encoder_categories(batch_index))
        z = qz.rsample() if n_samples == 1 else qz.rsample((n_samples,))
        return {"qz": qz, "z": z, "library": library_size(x)}

    @auto_move_data
    def generative(
        self,
        z: torch.Tensor,
        library: torch.Tensor,
        batch_index: torch.Tensor,
        transform_batch: int | None = None,
    ) -> dict[str, Distribution]:
        """Decode z into p(x | z).

        Parameters
        ----------
        z
            Latent samples, ``(..., cells, n_latent)``.
        library
            Observed total count of each cell, ``(cells, 1)``.
        batch_index
            Batch code of each cell (``(cells, 1)``).
        transform_batch
            Decode every cell as this batch (its code) instead of its own.
        """
        px = self.decoder(z, library, batch_codes(batch_index, transform_batch))
        pz = Normal(torch.zeros_like(z), torch.ones_like(z), validate_args=False)
        return {"px": px, "pz": pz}

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict,
        generative_outputs: dict,
        kl_weight: float = 1.0,
    ) -> LossOutput:
        """Negative ELBO: reconstruction loss plus ``kl_weight`` times KL(q(z|x) || p(z)).

        Parameters
        ----------
        tensors
            The minibatch, by scvi-tools' registry keys.
        inference_outputs
            What :meth:`inference` returned for it.
        generative_outputs
            What :meth:`generative` returned for it.
        kl_weight
            Weight of the KL term (the training plan's warm-up).
        """
        x = tensors[REGISTRY_KEYS.X_KEY]
        reconstruction_loss = -generative_outputs["px"].log_prob_sum(x)
        kl_z = kl_divergence(inference_outputs["qz"], generative_outputs["pz"]).sum(-1)
        loss = torch.mean(reconstruction_loss + kl_weight * kl_z)
        return LossOutput(loss=loss, reconstruction_loss=reconstruction_loss, kl_local=kl_z)

    def _log_importance_weights(
        self, tensors: dict[str, torch.Tensor], n_samples: int
    ) -> torch.Tensor:
        """:math:`\\log \\frac{p(x \\mid z_s) p(z_s)}{q(z_s \\mid x)}`, :math:`z_s \\sim
        q(z \\mid x)` (``(n_samples, cells)``)."""
        inference_outputs, generative_outputs = self.forward(
            tensors, inference_kwargs={"n_samples": n_samples}, compute_loss=False
        )
        z = inference_outputs["z"]
        x = tensors[REGISTRY_KEYS.X_KEY].to(z.device)
        log_w = (
            generative_outputs["px"].log_prob_sum(x)
            + self._log_prior(z)
            - inference_outputs["qz"].log_prob(z).sum(-1)
        )
        return log_w if n_samples > 1 else log_w.unsqueeze(0)

    def _log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`\\log p(z)` under the standard normal prior (summed over dimensions)."""
        return Normal(0.0, 1.0, validate_args=False).log_prob(z).sum(-1)
