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
        loader = trainer.train_dataloader
        batch_size = getattr(loader.batch_sampler, "batch_size", None) or 128
        # Every process reads all training cells in the same order, so the assignment is
        # identical on every DDP rank; rank 0's copy is broadcast to rule out float drift.
        latents = _latent_means(module, loader.dataset, batch_size)
        assignment, means, scales = self._fit(latents, module.n_clusters)
        assignment, means, scales = trainer.strategy.broadcast((assignment, means, scales), src=0)
        with torch.no_grad():
            module.prior_means.copy_(torch.as_tensor(means, device=module.prior_means.device))
            raw = torch.as_tensor(scales, device=module.prior_means.device)
            module.prior_scales_raw.copy_(_inverse_softplus(raw - MIN_SCALE))
        _fit_cluster_encoder(module, loader.dataset, assignment, batch_size, self.max_passes)
        state = trainer.strategy.broadcast(_cluster_encoder_state(module), src=0)
        module.load_state_dict(state, strict=False)

    def _fit(
        self, latents: np.ndarray, n_clusters: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """k-means assignment of each cell, and the mean and scale of each component."""
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
        return kmeans.labels_, means, scales


def _minibatch_positions(n_cells: int, batch_size: int, shuffle: bool) -> list[torch.Tensor]:
    order = torch.randperm(n_cells) if shuffle else torch.arange(n_cells)
    return list(order.split(batch_size))


@torch.inference_mode()
def _latent_means(module, dataset, batch_size: int) -> np.ndarray:
    """Posterior means of z, :math:`\\sum_k q(k|x) E[z|x,k]`, of every cell of ``dataset``."""
    was_training = module.training
    module.eval()
    latents = [
        module.posterior_summary(dataset[positions])[0].cpu()
        for positions in _minibatch_positions(len(dataset), batch_size, shuffle=False)
    ]
    module.train(was_training)
    return torch.cat(latents).numpy()


def _fit_cluster_encoder(
    module, dataset, assignment: np.ndarray, batch_size: int, max_passes: int
) -> None:
    """Fit q(y|x) to each cell's k-means assignment by cross-entropy (shuffled minibatches)."""
    parameters = [*module.cluster_encoder.parameters(), *module.cluster_logits.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    targets = torch.as_tensor(assignment, dtype=torch.long)
    was_training = module.training
    module.eval()
    module.cluster_encoder.train()
    for _ in range(max_passes):
        n_agree = 0
        for positions in _minibatch_positions(len(dataset), batch_size, shuffle=True):
            logits = module.qy_logits(dataset[positions])
            target = targets[positions].to(logits.device)
            loss = torch.nn.functional.cross_entropy(logits, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            n_agree += int((logits.argmax(-1) == target).sum())
        if n_agree >= 0.98 * len(dataset):
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
