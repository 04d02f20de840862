"""Place the GMVAE's mixture components on the data once the encoder has learned something."""

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from sklearn.cluster import KMeans

from scvae.module._encoder import MIN_SCALE


class ComponentInitialization(Callback):
    """Re-initialise p(z|y) from k-means on the latent means after ``epoch`` epochs.

    Randomly placed components make the GMVAE's clustering depend on the seed: some
    components start far from any cell and stay empty, others merge types. After a short
    warm-up the encoder already separates cell types, so k-means (``n_init`` restarts) on the
    posterior means of z gives components that sit on the data. Their means and
    per-dimension standard deviations become p(z|y=k). Left to the ELBO's gradient, q(y|x)
    takes tens of epochs to follow the moved components (and may merge types meanwhile), so
    its network is first fitted to the k-means assignments by cross-entropy, for at most
    ``max_passes`` passes over the training data or until it agrees on 98% of the cells.

    Parameters
    ----------
    epoch
        Epochs of training before the components are placed (0 disables).
    n_init
        k-means restarts.
    seed
        Random state of k-means.
    max_passes
        Passes of cross-entropy fitting of q(y|x) to the k-means assignments.
    """

    def __init__(self, epoch: int, n_init: int = 10, seed: int = 0, max_passes: int = 10):
        self.epoch = epoch
        self.n_init = n_init
        self.seed = seed
        self.max_passes = max_passes

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """At the end of epoch ``epoch``, fit k-means and copy it into the prior."""
        if trainer.current_epoch + 1 != self.epoch:
            return
        module = pl_module.module
        latents = _latent_means(module, trainer.train_dataloader)
        kmeans, means, scales = self._fit(latents, module.n_clusters)
        kmeans, means, scales = trainer.strategy.broadcast((kmeans, means, scales), src=0)
        with torch.no_grad():
            module.prior_means.copy_(torch.as_tensor(means, device=module.prior_means.device))
            raw = torch.as_tensor(scales, device=module.prior_means.device)
            module.prior_scales_raw.copy_(_inverse_softplus(raw - MIN_SCALE))
        _fit_cluster_encoder(module, trainer.train_dataloader, kmeans, self.max_passes)
        state = trainer.strategy.broadcast(_cluster_encoder_state(module), src=0)
        module.load_state_dict(state, strict=False)

    def _fit(self, latents: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
        n_clusters_fit = min(n_clusters, len(latents))
        kmeans = KMeans(n_clusters_fit, n_init=self.n_init, random_state=self.seed).fit(latents)
        means = np.empty((n_clusters, latents.shape[1]), dtype=np.float32)
        scales = np.empty_like(means)
        overall_scale = latents.std(0) + 1e-3
        for k in range(n_clusters):
            members = latents[kmeans.labels_ == k] if k < n_clusters_fit else latents[:0]
            if len(members) > 1:
                means[k], scales[k] = members.mean(0), members.std(0) + 1e-3
            else:  # more components than distinct cells: spare ones go near the data
                means[k] = latents[k % len(latents)]
                scales[k] = overall_scale
        return kmeans, means, scales


@torch.inference_mode()
def _latent_means(module, dataloader) -> np.ndarray:
    """Posterior means of z, :math:`\\sum_k q(k|x) E[z|x,k]`, over a dataloader."""
    was_training = module.training
    module.eval()
    latents = [module.posterior_summary(tensors)[0].cpu() for tensors in dataloader]
    module.train(was_training)
    return torch.cat(latents).numpy()


def _fit_cluster_encoder(module, dataloader, kmeans: KMeans, max_passes: int) -> None:
    """Fit q(y|x) to the k-means assignment of each cell's latent mean (cross-entropy)."""
    parameters = [*module.cluster_encoder.parameters(), *module.cluster_logits.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    was_training = module.training
    module.eval()
    module.cluster_encoder.train()
    for _ in range(max_passes):
        n_agree = n_cells = 0
        for tensors in dataloader:
            latent, _ = module.posterior_summary(tensors)
            target = torch.as_tensor(kmeans.predict(latent.cpu().numpy()), device=latent.device)
            logits = module.qy_logits(tensors)
            loss = torch.nn.functional.cross_entropy(logits, target.long())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            n_agree += int((logits.argmax(-1) == target).sum())
            n_cells += len(target)
        if n_agree >= 0.98 * n_cells:
            break
    module.train(was_training)


def _cluster_encoder_state(module) -> dict[str, torch.Tensor]:
    return {
        key: value
        for key, value in module.state_dict().items()
        if key.startswith(("cluster_encoder.", "cluster_logits."))
    }


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))
