"""Place the GMVAE's mixture components on the data once the encoder has learned something."""

from collections.abc import Sequence

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from scipy.optimize import linear_sum_assignment
from scvi.module.base import BaseModuleClass
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from scvae.data import RegisteredTensors

from ._agreement import mean_agreements
from ._evaluating import evaluating

#: How the latent means are clustered at a placement.
PLACEMENT_METHODS = ("kmeans", "gaussian_mixture")
#: Share of the cells on which a refitted q(y|x) must agree with the placement to stop early.
AGREEMENT = 0.98
#: Batch-norm layers, whose running statistics are re-estimated after a refit of q(y|x).
BatchNorm = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


class ComponentInitialization(Callback):
    """Place p(z | y) on clusters of the latent means after the given epochs.

    The latent means of the training cells are clustered into K groups, and each group's
    mean, per-dimension spread and share become :math:`\\mu_k`, :math:`\\sigma_k` and (with
    learned weights) :math:`\\pi_k`. The spread is the M-step's: :math:`\\sigma_k^2` is the
    group's mean of :math:`s^2 + (m - \\mu_k)^2` over its cells' posterior means :math:`m`
    and variances :math:`s^2`, the value that maximises the ELBO for the current q(z | x).

    ``method="kmeans"`` runs k-means ``n_init`` times from single random starts and keeps the
    partition that agrees most with the others (the highest mean adjusted Rand index), the
    most typical partition of the runs, rather than the one of lowest inertia, which on
    overlapping cell types changes from one set of starts to the next.
    ``method="gaussian_mixture"`` fits K diagonal Gaussians by EM (``n_init`` restarts).

    Each placement is matched to the components it replaces (the fitted group nearest to
    component k becomes component k, by an optimal one-to-one assignment), so that what the
    networks learned for a component carries over to the cells it holds after the move. A
    q(y | x) with a network of its own (``cluster_encoder``) is then fitted to the assignment
    by cross-entropy, for at most ``max_passes`` passes or until it agrees on 98% of the cells
    in evaluation mode, its batch-norm statistics re-estimated for its new weights.

    Parameters
    ----------
    epochs
        Epochs (counted from 1) after which the components are placed; 0 entries are ignored.
    n_init
        k-means runs (or EM restarts).
    seed
        Random state of the clustering.
    max_passes
        Passes of cross-entropy fitting of a q(y | x) network to the assignment.
    method
        ``"kmeans"`` or ``"gaussian_mixture"``.
    max_cells
        The clustering is fitted to at most this many cells drawn at random (all cells are
        then assigned), which bounds its cost on millions of cells.
    """

    def __init__(
        self,
        epochs: int | Sequence[int],
        *,
        n_init: int = 30,
        seed: int = 0,
        max_passes: int = 10,
        method: str = "kmeans",
        max_cells: int = 50_000,
    ):
        if method not in PLACEMENT_METHODS:
            raise ValueError(
                f"The placement method {method!r} (component_init_method of GMVAE.train) is "
                f"not one of {PLACEMENT_METHODS}."
            )
        epochs = np.atleast_1d(epochs)
        if (epochs < 0).any():
            raise ValueError(f"Placement epochs must be >= 0 (0 disables), got {epochs.tolist()}.")
        self.epochs = sorted({int(e) for e in epochs if e > 0})
        self.n_init, self.seed, self.max_passes = n_init, seed, max_passes
        self.method, self.max_cells = method, max_cells

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """After each of ``epochs``, cluster the latent means and copy that into the prior."""
        if trainer.current_epoch + 1 not in self.epochs:
            return
        module = pl_module.module
        loader = trainer.train_dataloader
        batch_size = getattr(loader.batch_sampler, "batch_size", None) or 128
        # Every process reads all training cells in the same order, so the assignment is
        # identical on every DDP rank; rank 0's copy is broadcast to rule out float drift.
        means, variances = latent_posteriors(module, loader.dataset, batch_size)
        current = module.prior.means.detach().cpu().numpy()
        fitted = match_components(
            self.fit(means, module.n_components, variances=variances), current
        )
        assignment, centres, scales, weights = trainer.strategy.broadcast(fitted, src=0)
        module.prior.set(centres, scales, weights)
        if hasattr(module, "cluster_encoder"):  # q(y|x) has a network of its own
            _fit_cluster_encoder(module, loader.dataset, assignment, batch_size, self.max_passes)
            state = trainer.strategy.broadcast(_cluster_encoder_state(module), src=0)
            module.load_state_dict(state, strict=False)

    def cluster(self, latents: np.ndarray, n_clusters: int) -> np.ndarray:
        """Group of each of ``latents`` (cells x latent), at most ``n_clusters`` groups."""
        rng = np.random.default_rng(self.seed)
        sample = latents
        if len(latents) > self.max_cells:
            sample = latents[rng.choice(len(latents), self.max_cells, replace=False)]
        n_fit = min(n_clusters, len(np.unique(sample, axis=0)))
        if self.method == "gaussian_mixture":
            mixture = GaussianMixture(
                n_fit,
                covariance_type="diag",
                reg_covar=1e-4,
                n_init=self.n_init,
                random_state=self.seed,
            ).fit(sample)
            return mixture.predict(latents)
        runs = [
            KMeans(n_fit, n_init=1, random_state=(self.seed + run) % 2**32).fit(sample)
            for run in range(self.n_init)
        ]
        typical = runs[int(np.argmax(mean_agreements([run.labels_ for run in runs])))]
        return typical.labels_ if sample is latents else typical.predict(latents)

    def fit(
        self, latents: np.ndarray, n_clusters: int, *, variances: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Cluster ``latents`` (posterior means, cells x latent) into ``n_clusters`` components.

        Parameters
        ----------
        latents
            Posterior means of z.
        n_clusters
            Number of components K.
        variances
            Posterior variances of z, as ``latents``; ``None`` takes them as zero.

        Returns
        -------
        The component of each cell, and each component's mean, per-dimension standard
        deviation and weight. Components left without cells (fewer distinct cells than
        components) are put on cells, with the overall spread and a tiny weight.
        """
        assignment = self.cluster(latents, n_clusters)
        if variances is None:
            variances = np.zeros_like(latents)
        overall = _spread(latents, variances, latents.mean(0))
        means = np.empty((n_clusters, latents.shape[1]), dtype=np.float32)
        scales, weights = np.empty_like(means), np.zeros(n_clusters)
        for k in range(n_clusters):
            members = assignment == k
            if members.sum() > 1:
                means[k] = latents[members].mean(0)
                scales[k] = _spread(latents[members], variances[members], means[k])
            else:  # a spare component: on a cell, with the overall spread
                means[k] = latents[members][0] if members.any() else latents[k % len(latents)]
                scales[k] = overall
            weights[k] = members.mean()
        weights = np.maximum(weights, 1e-3)  # an empty cluster must not get log p(y) = -inf
        return assignment, means, scales, weights / weights.sum()


def match_components(
    fitted: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], current_means: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Renumber a fit of :meth:`ComponentInitialization.fit` after the components it replaces.

    The fitted component whose mean is nearest to the current mean of component k becomes
    component k (one-to-one, minimal total squared distance, Hungarian algorithm).
    """
    assignment, means, scales, weights = fitted
    distances = ((current_means[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    _, order = linear_sum_assignment(distances)  # order[k]: fitted component that becomes k
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    return renumber[assignment], means[order], scales[order], weights[order]


def _spread(means: np.ndarray, variances: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """:math:`\\sqrt{E[s^2 + (m - c)^2]}` per dimension, plus 1e-3."""
    return np.sqrt((variances + (means - centre) ** 2).mean(0)) + 1e-3


@torch.inference_mode()
def latent_posteriors(
    module: BaseModuleClass, dataset: RegisteredTensors, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and variances of z of every cell of ``dataset`` (cells x latent)."""
    means, variances = [], []
    with evaluating(module):
        for positions in dataset.minibatches(batch_size):
            mean, variance, _ = module.posterior_summary(dataset[positions])
            means.append(mean.cpu())
            variances.append(variance.cpu())
    return torch.cat(means).numpy(), torch.cat(variances).numpy()


def _fit_cluster_encoder(
    module, dataset, assignment: np.ndarray, batch_size: int, max_passes: int
) -> float:
    """Fit q(y|x) to each cell's assigned component by cross-entropy (shuffled minibatches in
    training mode), for at most ``max_passes`` passes or until it agrees with the assignment
    on :data:`AGREEMENT` of the cells in evaluation mode, as it is used. Its batch-norm
    statistics are re-estimated before each such check (:func:`_reestimate_batch_norm`):
    their running means move by 1% a minibatch and would otherwise lag behind the refitted
    network. Returns that agreement (the share of cells)."""
    parameters = [*module.cluster_encoder.parameters(), *module.cluster_logits.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    targets = torch.as_tensor(assignment, dtype=torch.long)
    agreement = 0.0
    with evaluating(module):
        for done in range(1, max_passes + 1):
            module.cluster_encoder.train()
            n_agree = 0
            for positions in dataset.minibatches(batch_size, shuffle=True):
                if len(positions) < 2:  # batch norm needs two cells (another cell each pass)
                    continue
                logits = module.qy_logits(dataset[positions])
                target = targets[positions].to(logits.device)
                loss = torch.nn.functional.cross_entropy(logits, target)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                n_agree += int((logits.argmax(-1) == target).sum())
            module.cluster_encoder.eval()
            if n_agree >= AGREEMENT * len(dataset) or done == max_passes:
                _reestimate_batch_norm(module, dataset, batch_size)
                agreement = _agreement(module, dataset, targets, batch_size)
                if agreement >= AGREEMENT:
                    break
    return agreement


@torch.no_grad()
def _reestimate_batch_norm(module, dataset, batch_size: int) -> None:
    """Recompute the running statistics of q(y|x)'s batch norms from scratch: one pass over
    ``dataset`` without dropout, each minibatch's statistics averaged with equal weight
    (``momentum=None``), as for weights that changed faster than the running means follow."""
    networks = (module.cluster_encoder, module.cluster_logits)
    norms = [layer for net in networks for layer in net.modules() if isinstance(layer, BatchNorm)]
    if not norms:
        return
    kept = [(norm.momentum, norm.training) for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    try:
        for positions in dataset.minibatches(batch_size):
            if len(positions) > 1:  # batch norm needs two cells
                module.qy_logits(dataset[positions])
    finally:
        for norm, (momentum, training) in zip(norms, kept, strict=True):
            norm.momentum = momentum
            norm.train(training)


@torch.no_grad()
def _agreement(module, dataset, targets: torch.Tensor, batch_size: int) -> float:
    """Share of the cells of ``dataset`` whose most likely component under q(y|x) (the module
    as it is, in evaluation mode in practice) is their ``targets``."""
    n_agree = 0
    for positions in dataset.minibatches(batch_size):
        logits = module.qy_logits(dataset[positions])
        n_agree += int((logits.argmax(-1).cpu() == targets[positions]).sum())
    return n_agree / max(len(dataset), 1)


def _cluster_encoder_state(module) -> dict[str, torch.Tensor]:
    return {
        key: value
        for key, value in module.state_dict().items()
        if key.startswith(("cluster_encoder.", "cluster_logits."))
    }
