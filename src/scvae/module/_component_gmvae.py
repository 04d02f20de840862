"""scVAE's GMVAE: q(z | x, y) per mixture component, every component decoded (K decoder passes)."""

from collections.abc import Sequence

import torch
from scvi import REGISTRY_KEYS
from scvi.module.base import LossOutput, auto_move_data
from torch import nn
from torch.distributions import Distribution, kl_divergence

from scvae._counts import library_size
from scvae.distributions import ComponentMixture

from ._base import CountModule, batch_codes
from ._encoder import GaussianEncoder
from ._mixture_prior import MixturePrior
from ._mixture_queries import MixtureQueries
from ._networks import batch_norm_places, cluster_classifier


class ComponentGMVAEModule(MixtureQueries, CountModule):
    """scVAE's Gaussian-mixture VAE (Grønbech et al. 2020), the cluster variable summed out exactly.

    Generative model: :math:`y \\sim Cat(\\pi)`, :math:`z \\mid y \\sim N(\\mu_y, \\sigma^2_y)`,
    :math:`x \\mid z \\sim p_\\theta(x \\mid z)`. Inference model:
    :math:`q(y \\mid x)\\,q(z \\mid x, y)`. The ELBO per cell is

    .. math::
        \\sum_k q(k \\mid x) \\big[E_{q(z \\mid x, k)} \\log p(x \\mid z)
        - KL(q(z \\mid x, k) \\| p(z \\mid k))\\big] - KL(q(y \\mid x) \\| p(y)),

    evaluated for all K components in one batched pass: the encoder's first layer adds a
    learned embedding of y to a single projection of x, and the decoder runs once on the
    ``(K, cells, n_latent)`` tensor of samples.

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
        Hidden layer widths of the encoders; the decoder mirrors them.
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
    marginal_cluster_kl
        Train with :math:`KL(\\bar q(y) \\| p(y))` of the minibatch-averaged q(y|x) in place
        of the per-cell :math:`KL(q(y \\mid x) \\| p(y))`. The per-cell term equals the
        marginal one plus the mutual information between x and y (Hoffman & Johnson 2016,
        "ELBO surgery"), so this stops the objective from pushing q(y|x) towards the uniform
        prior (collapse) while still keeping components in use. The reported ELBO is always
        the exact one.
    component_spread
        Standard deviation of the initial component means of p(z|y).
    """

    #: Every sample of :meth:`marginal_ll` is decoded once per component.
    mc_samples_per_pass: int = 20
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
        marginal_cluster_kl: bool = False,
        component_spread: float = 1.0,
    ):
        super().__init__(n_input, n_batch, n_latent, encode_batch)
        self.n_components = n_components
        self.marginal_cluster_kl = marginal_cluster_kl
        categories = (n_batch,) if encode_batch else ()
        encoder_norm, decoder_norm = batch_norm_places(use_batch_norm)
        self.cluster_encoder, self.cluster_logits = cluster_classifier(
            n_input, n_hidden, categories, encoder_norm, dropout_rate, n_components
        )
        self.latent_encoder = GaussianEncoder(
            n_input, n_hidden, n_latent, categories, encoder_norm, dropout_rate
        )
        # One-hot y entering q(z|x,y)'s first layer, stored as the rows of that layer's weight.
        self.cluster_embedding = nn.Parameter(torch.randn(n_components, n_hidden[0]) * 0.1)
        self.prior = MixturePrior(n_components, n_latent, prior == "learned", component_spread)
        self.decoder = self._count_decoder(
            n_hidden, likelihood, dispersion, scale_by_library, piecewise_cutoff, decoder_norm
        )

    def _get_generative_input(
        self, tensors: dict[str, torch.Tensor], inference_outputs: dict
    ) -> dict[str, torch.Tensor]:
        return {
            "z_components": inference_outputs["z_components"],
            "library": inference_outputs["library"],
            "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY],
            "qy_logits": inference_outputs["qy_logits"],
        }

    def qy_logits(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of q(y|x) of the cells of the minibatch ``tensors`` alone, without encoding z
        (``(cells, K)``)."""
        inputs = self._get_inference_input(tensors)
        device = self.prior.means.device
        categories = self._encoder_categories(inputs["batch_index"].to(device))
        return self.cluster_logits(
            self.cluster_encoder(torch.log1p(inputs["x"].to(device)), categories)
        )

    @torch.inference_mode()
    def posterior_summary(
        self, tensors: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posterior mean and variance of z under :math:`\\sum_k q(k \\mid x) q(z \\mid x, k)`,
        and q(y|x), of the cells of the minibatch ``tensors``."""
        outputs = self.inference(**self._get_inference_input(tensors))
        qy = torch.softmax(outputs["qy_logits"], dim=-1)  # (cells, K)
        weights, qz = qy.T.unsqueeze(-1), outputs["qz"]
        mean = (weights * qz.loc).sum(0)
        variance = (weights * (qz.scale**2 + qz.loc**2)).sum(0) - mean**2
        return mean, variance.clamp(min=0), qy

    @auto_move_data
    def inference(
        self, x: torch.Tensor, batch_index: torch.Tensor, n_samples: int = 1
    ) -> dict[str, torch.Tensor | Distribution]:
        """Encode counts (dense, or torch sparse CSR) into q(y|x) (logits) and q(z|x,y) for
        every y at once.

        ``z_components`` has shape ``(K, cells, n_latent)``, or
        ``(n_samples, K, cells, n_latent)``; ``z`` is one draw per cell from the mixture.

        Parameters
        ----------
        x
            Counts of the minibatch, ``(cells, genes)``.
        batch_index
            Batch code of each cell, as scvi-tools hands it over (``(cells, 1)``).
        n_samples
            Draws of z per cell; more than one adds a leading sample axis.
        """
        categories = self._encoder_categories(batch_index)
        log_x = torch.log1p(x)
        qy_logits = self.cluster_logits(self.cluster_encoder(log_x, categories))
        qz = self.latent_encoder(log_x, categories, self.cluster_embedding[:, None, :])
        z_components = qz.rsample() if n_samples == 1 else qz.rsample((n_samples,))
        # One z per cell from the mixture q(z|x) = sum_k q(k|x) q(z|x,k), for scvi-tools'
        # generic queries; the ELBO itself uses every component's sample.
        y = torch.distributions.Categorical(logits=qy_logits).sample(z_components.shape[:-3])
        index = y.unsqueeze(-2).unsqueeze(-1).expand(*y.shape[:-1], 1, y.shape[-1], self.n_latent)
        z = z_components.gather(-3, index).squeeze(-3)
        return {
            "qy_logits": qy_logits,
            "qz": qz,
            "z_components": z_components,
            "z": z,
            "library": library_size(x),
        }

    @auto_move_data
    def generative(
        self,
        z_components: torch.Tensor,
        library: torch.Tensor,
        batch_index: torch.Tensor,
        qy_logits: torch.Tensor,
        transform_batch: int | None = None,
    ) -> dict[str, Distribution]:
        """Decode every component's z in one pass.

        Returns ``px_components`` (batch shape ``(..., K, cells, genes)``), ``px`` (their
        mixture under q(y|x), for expression queries and sampling) and ``pz`` (p(z|y)).

        Parameters
        ----------
        z_components
            Every component's latent samples, ``(..., K, cells, n_latent)``.
        library
            Observed total count of each cell, ``(cells, 1)``.
        batch_index
            Batch code of each cell (``(cells, 1)``).
        qy_logits
            Logits of q(y|x), ``(cells, K)``: the weights of ``px``.
        transform_batch
            Decode every cell as this batch (its code) instead of its own.
        """
        px_components = self.decoder(
            z_components, library, batch_codes(batch_index, transform_batch)
        )
        px = ComponentMixture(px_components, torch.log_softmax(qy_logits, dim=-1))
        return {"px_components": px_components, "px": px, "pz": self.prior.components()}

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict,
        generative_outputs: dict,
        kl_weight: float = 1.0,
    ) -> LossOutput:
        """Negative ELBO with y summed out exactly; KL terms for z and y reported apart.
        ``kl_weight`` (the warm-up) scales the KL of z only; the KL of y keeps weight 1.

        Parameters
        ----------
        tensors
            The minibatch, by scvi-tools' registry keys.
        inference_outputs
            What :meth:`inference` returned for it.
        generative_outputs
            What :meth:`generative` returned for it.
        kl_weight
            Weight of the KL term of z (the training plan's warm-up).
        """
        x = tensors[REGISTRY_KEYS.X_KEY]
        log_qy = torch.log_softmax(inference_outputs["qy_logits"], dim=-1)  # (cells, K)
        qy = log_qy.exp()
        rec_k = -generative_outputs["px_components"].log_prob_sum(x)  # (K, cells)
        kl_z_k = kl_divergence(inference_outputs["qz"], generative_outputs["pz"]).sum(-1)
        reconstruction_loss = (qy * rec_k.T).sum(-1)
        kl_z = (qy * kl_z_k.T).sum(-1)
        log_py = self.prior.log_weights()
        kl_y = (qy * (log_qy - log_py)).sum(-1)
        if self.marginal_cluster_kl:
            qy_mean = qy.mean(0)
            kl_y_train = (qy_mean * (torch.log(qy_mean.clamp(min=1e-30)) - log_py)).sum()
        else:
            kl_y_train = kl_y.mean()
        loss = torch.mean(reconstruction_loss + kl_weight * kl_z) + kl_y_train
        return LossOutput(
            loss=loss,
            reconstruction_loss=reconstruction_loss,
            kl_local={"kl_z": kl_z, "kl_y": kl_y},
            extra_metrics={"kl_z": kl_z.mean().detach(), "kl_y": kl_y.mean().detach()},
        )

    def _log_importance_weights(
        self, tensors: dict[str, torch.Tensor], n_samples: int
    ) -> torch.Tensor:
        """y summed exactly and z drawn from q(z | x, y) (``(n_samples, cells)``):
        :math:`\\log \\sum_k \\frac{p(x \\mid z_{sk}) p(z_{sk} \\mid k) p(k)}
        {q(z_{sk} \\mid x, k)}`."""
        inference_outputs, generative_outputs = self.forward(
            tensors, inference_kwargs={"n_samples": n_samples}, compute_loss=False
        )
        z = inference_outputs["z_components"]
        if n_samples == 1:
            z = z.unsqueeze(0)
        x = tensors[REGISTRY_KEYS.X_KEY].to(z.device)
        log_px_z = generative_outputs["px_components"].log_prob_sum(x)
        log_pz = generative_outputs["pz"].log_prob(z).sum(-1)
        log_qz = inference_outputs["qz"].log_prob(z).sum(-1)
        log_py = self.prior.log_weights()[:, None]
        return (log_px_z.reshape(log_pz.shape) + log_pz - log_qz + log_py).logsumexp(1)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        """Also load a module saved by scvae 0.1.0, whose prior lay in ``prior_*`` parameters."""
        for old, new in (("means", "means"), ("scales_raw", "scales_raw"), ("logits", "logits")):
            if prefix + f"prior_{old}" in state_dict:
                state_dict[f"{prefix}prior.{new}"] = state_dict.pop(prefix + f"prior_{old}")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)
