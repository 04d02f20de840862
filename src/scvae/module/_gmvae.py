"""The GMVAE module: one q(z | x) for every mixture component, y summed out in latent space."""

from collections.abc import Sequence

import torch
from scvi import REGISTRY_KEYS
from scvi.module.base import LossOutput, auto_move_data
from torch.distributions import Distribution

from ._base import batch_codes
from ._mixture_prior import MixturePrior
from ._mixture_queries import MixtureQueries
from ._networks import batch_norm_places, cluster_classifier
from ._vae import VAEModule

#: How q(y | x) is computed (see :class:`GMVAEModule`).
CLUSTER_POSTERIORS: tuple[str, ...] = ("responsibilities", "classifier")


class GMVAEModule(MixtureQueries, VAEModule):
    """Gaussian-mixture VAE whose components share one posterior q(z | x).

    Generative model: :math:`y \\sim Cat(\\pi)`, :math:`z \\mid y \\sim N(\\mu_y,
    \\sigma^2_y)`, :math:`x \\mid z \\sim p_\\theta(x \\mid z)`. Inference model:
    :math:`q(y \\mid x)\\, q(z \\mid x)`. The ELBO per cell,

    .. math::
        E_{q(z \\mid x)} \\log p(x \\mid z) - \\sum_k q(k \\mid x)\\, KL_k
        - KL(q(y \\mid x) \\| p(y)), \\qquad KL_k = KL(q(z \\mid x) \\| p(z \\mid k)),

    sums y out exactly, and only in latent space: the decoder and the likelihood run once per
    cell, the K Gaussian KL terms are closed-form. ``cluster_posterior`` chooses q(y | x):

    * ``"responsibilities"``: :math:`q(k \\mid x) \\propto \\pi_k e^{-KL_k}`, the q(y | x) that
      maximises the ELBO for the current q(z | x) and prior (the E-step of variational EM).
      Its KL terms add up to :math:`-\\log \\sum_k \\pi_k e^{-KL_k}`. It is the prior's
      responsibilities :math:`p(y \\mid z)` of VaDE (Jiang et al. 2017) taken in expectation
      over q(z | x) (the two agree as q(z | x) narrows), and needs no network of its own.
    * ``"classifier"``: q(y | x) is its own network on the counts, as in M2-style GMVAEs.

    Parameters
    ----------
    n_input
        Number of genes.
    n_components
        Number of mixture components K.
    n_batch
        Number of batches.
    n_latent
        Dimension of z.
    n_hidden
        Hidden layer widths of the encoder(s); the decoder mirrors them.
    likelihood, dispersion, scale_by_library, piecewise_cutoff
        Count likelihood options, see :class:`~scvae.module.CountDecoder`.
    prior
        ``"uniform"`` p(y), or ``"learned"`` mixture weights.
    use_batch_norm
        Which networks batch-normalise their hidden layers: ``"encoder"``, ``"decoder"``,
        ``"both"`` or ``"none"`` (``True`` and ``False`` mean ``"both"`` and ``"none"``).
    dropout_rate
        Dropout on the encoders' hidden layers.
    encode_batch
        Also condition the encoders on the batch.
    cluster_posterior
        ``"responsibilities"`` or ``"classifier"``, see above.
    component_spread
        Standard deviation of the initial component means; 0 (the default) starts every
        component at :math:`N(0, I)`, so that until the components are placed the model is a
        VAE with a standard normal prior.
    """

    #: The loss's ``extra_metrics``, logged per epoch by :class:`~scvae.train.ScvaeTrainingPlan`.
    extra_metric_names: tuple[str, ...] = ("kl_z", "kl_y")

    def __init__(
        self,
        n_input: int,
        n_components: int = 10,
        n_batch: int = 1,
        n_latent: int = 10,
        n_hidden: Sequence[int] = (128,),
        likelihood: str = "nb",
        dispersion: str = "gene",
        scale_by_library: bool = True,
        piecewise_cutoff: int | None = None,
        prior: str = "uniform",
        use_batch_norm: bool | str = "encoder",
        dropout_rate: float = 0.1,
        encode_batch: bool = False,
        cluster_posterior: str = "responsibilities",
        component_spread: float = 0.0,
    ):
        if cluster_posterior not in CLUSTER_POSTERIORS:
            raise ValueError(
                f"cluster_posterior={cluster_posterior!r} is not one of {CLUSTER_POSTERIORS}."
            )
        super().__init__(
            n_input,
            n_batch=n_batch,
            n_latent=n_latent,
            n_hidden=n_hidden,
            likelihood=likelihood,
            dispersion=dispersion,
            scale_by_library=scale_by_library,
            piecewise_cutoff=piecewise_cutoff,
            use_batch_norm=use_batch_norm,
            dropout_rate=dropout_rate,
            encode_batch=encode_batch,
        )
        self.n_components = n_components
        self.cluster_posterior = cluster_posterior
        self.prior = MixturePrior(n_components, n_latent, prior == "learned", component_spread)
        if cluster_posterior == "classifier":
            categories = (n_batch,) if encode_batch else ()
            encoder_norm, _ = batch_norm_places(use_batch_norm)
            self.cluster_encoder, self.cluster_logits = cluster_classifier(
                n_input, n_hidden, categories, encoder_norm, dropout_rate, n_components
            )

    def _classifier_logits(self, x: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        categories = self._encoder_categories(batch_index)
        return self.cluster_logits(self.cluster_encoder(torch.log1p(x), categories))

    def qy_logits(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of the classifier's q(y|x) (``(cells, K)``) of the cells of the minibatch
        ``tensors``; only with ``"classifier"``."""
        device = self.prior.means.device
        x = tensors[REGISTRY_KEYS.X_KEY].to(device)
        return self._classifier_logits(x, tensors[REGISTRY_KEYS.BATCH_KEY].to(device))

    @auto_move_data
    def inference(
        self, x: torch.Tensor, batch_index: torch.Tensor, n_samples: int = 1
    ) -> dict[str, torch.Tensor | Distribution]:
        """q(z | x) with ``n_samples`` draws of z, the KL terms :math:`KL_k` (``kl_components``,
        ``(cells, K)``) and the logits of q(y | x) (``(cells, K)``).

        Parameters
        ----------
        x
            Counts of the minibatch, ``(cells, genes)``.
        batch_index
            Batch code of each cell, as scvi-tools hands it over (``(cells, 1)``).
        n_samples
            Draws of z per cell; more than one adds a leading sample axis.
        """
        outputs = super().inference(x, batch_index, n_samples)
        outputs["kl_components"] = self.prior.kl_from(outputs["qz"])
        if self.cluster_posterior == "classifier":
            outputs["qy_logits"] = self._classifier_logits(x, batch_index)
        else:
            outputs["qy_logits"] = self.prior.log_weights() - outputs["kl_components"]
        return outputs

    @auto_move_data
    def generative(
        self,
        z: torch.Tensor,
        library: torch.Tensor,
        batch_index: torch.Tensor,
        transform_batch: int | None = None,
    ) -> dict[str, Distribution]:
        """Decode z into p(x | z), once per cell.

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
        return {"px": self.decoder(z, library, batch_codes(batch_index, transform_batch))}

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict,
        generative_outputs: dict,
        kl_weight: float = 1.0,
    ) -> LossOutput:
        """Negative ELBO; ``kl_weight`` scales the KL terms of z and y together.

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
        log_qy = torch.log_softmax(inference_outputs["qy_logits"], dim=-1)
        qy = log_qy.exp()
        kl_z = (qy * inference_outputs["kl_components"]).sum(-1)
        kl_y = (qy * (log_qy - self.prior.log_weights())).sum(-1)
        loss = torch.mean(reconstruction_loss + kl_weight * (kl_z + kl_y))
        return LossOutput(
            loss=loss,
            reconstruction_loss=reconstruction_loss,
            kl_local={"kl_z": kl_z, "kl_y": kl_y},
            extra_metrics={"kl_z": kl_z.mean().detach(), "kl_y": kl_y.mean().detach()},
        )

    @torch.inference_mode()
    def posterior_summary(
        self, tensors: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posterior mean and variance of z and q(y | x) of the cells of the minibatch
        ``tensors``, each ``(cells, ...)``."""
        outputs = self.inference(**self._get_inference_input(tensors))
        qz = outputs["qz"]
        return qz.loc, qz.scale**2, torch.softmax(outputs["qy_logits"], dim=-1)

    def _log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`\\log \\sum_k \\pi_k p(z \\mid k)`: y summed exactly in the importance
        weights of :meth:`marginal_ll`."""
        return self.prior.log_prob(z)
