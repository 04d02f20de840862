"""Stop a GMVAE fit once its clustering and its ELBO have settled."""

from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from ._evaluating import evaluating

#: Without validation cells, this many training cells (a fixed random subset) are followed.
N_TRACKED_CELLS = 2048


class ClusterConvergence(Callback):
    """End training when the cluster assignments stop moving and the ELBO stops rising.

    After every epoch after ``start_epoch``, the most likely cluster (argmax q(y | x)) of
    each validation cell (as the validation pass computed it; without validation cells, of a
    fixed random subset of the training cells) is compared with the previous epoch's, and the
    validation ELBO (else the training ELBO) is recorded; how far the assignments moved (the
    mean total-variation distance between the epoch's q(y | x) and the last one's) goes into
    the model's history as ``clusters_changed``. Training stops once, over the last
    ``patience`` epochs against the ``patience`` epochs before, the mean ELBO rose by less
    than ``min_elbo_gain`` (relative) and the assignments' mean movement is below
    ``max_changed`` or level (within ``movement_tolerance`` of the window before, relative):
    it has fallen to the level that minibatch noise alone keeps up.

    Parameters
    ----------
    start_epoch
        The epoch (counted from 1) after which the components were last placed: the
        assignments are followed from the next one on.
    patience
        Length of the windows of epochs compared.
    max_changed
        Mean movement of the assignments per epoch below which a window is settled.
    movement_tolerance
        Relative change of the mean movement between windows within which it is level.
    min_elbo_gain
        Relative rise of the windows' mean ELBO below which the ELBO has settled.
    seed
        Seed of the choice of followed training cells (without validation cells).

    Attributes
    ----------
    changed
        For each epoch followed, how far the assignments moved (``nan`` first).
    elbos
        For each epoch followed, the ELBO per cell.
    stopped_epoch
        The epoch (counted from 1) after which training stopped, or ``None``.
    """

    def __init__(
        self,
        *,
        start_epoch: int = 0,
        patience: int = 10,
        max_changed: float = 0.02,
        movement_tolerance: float = 0.1,
        min_elbo_gain: float = 1e-3,
        seed: int = 0,
    ):
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}.")
        self.start_epoch, self.patience = start_epoch, patience
        self.max_changed, self.movement_tolerance = max_changed, movement_tolerance
        self.min_elbo_gain = min_elbo_gain
        self.seed = seed
        self.changed: list[float] = []
        self.elbos: list[float] = []
        self.stopped_epoch: int | None = None
        self._previous: torch.Tensor | None = None
        #: q(y | x) of this process's validation cells at the last validation pass.
        self._validated: torch.Tensor | None = None
        self._batches: list[torch.Tensor] = []
        self._max_epochs: int | None = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Forget any earlier fit."""
        self.changed, self.elbos, self.stopped_epoch, self._previous = [], [], None, None
        self._validated, self._max_epochs = None, trainer.max_epochs

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start collecting the validation pass's q(y | x)."""
        self._batches = []

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Keep a validation minibatch's q(y | x) (``{"qy": ...}`` from the training plan).

        Parameters
        ----------
        trainer
            The Lightning trainer.
        pl_module
            The training plan the trainer fits.
        outputs
            What the plan's ``validation_step`` returned.
        batch
            The minibatch.
        batch_idx
            Its index in the validation pass.
        dataloader_idx
            Index of its loader.
        """
        if isinstance(outputs, dict) and "qy" in outputs:
            self._batches.append(outputs["qy"])

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The pass's q(y | x) of every validation cell (not Lightning's sanity check)."""
        if not trainer.sanity_checking and self._batches:
            self._validated = torch.cat(self._batches)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Record this epoch's assignment changes and ELBO; stop if both have settled."""
        if trainer.current_epoch + 1 <= self.start_epoch:
            return
        clusters = self._validated  # this epoch's validation pass, if there was one
        if clusters is not None and clusters is self._previous:
            return  # no validation this epoch (check_val_every_n_epoch > 1): nothing new
        validated = clusters is not None and len(clusters) > 0
        if not validated:
            clusters = self._training_clusters(pl_module.module, trainer.train_dataloader)
        self.changed.append(self._changed_share(trainer, clusters))
        self._previous = clusters
        if not np.isnan(self.changed[-1]):  # in the history, beside the ELBOs
            pl_module.log("clusters_changed", self.changed[-1], on_step=False, on_epoch=True)
        self.elbos.append(_epoch_elbo(trainer, pl_module, validated))
        if self.settled():
            self.stopped_epoch = trainer.current_epoch + 1
            trainer.should_stop = True

    @property
    def stop_message(self) -> str | None:
        """Why training ended before ``max_epochs``, once it has (``None`` otherwise): shown
        under the progress bar (:class:`~scvae.train.StopReport`)."""
        if self.stopped_epoch is None or self.stopped_epoch >= (self._max_epochs or 0):
            return None  # settled at the last epoch, or kept going (min_epochs): not early
        return (
            f"Training stopped after epoch {self.stopped_epoch} of {self._max_epochs}: the "
            "clusters and the ELBO have settled."
        )

    def settled(self) -> bool:
        """Whether the last ``patience`` epochs are settled (see the class docstring)."""
        n = self.patience
        if len(self.elbos) < 2 * n:
            return False
        moved_before, moved = np.nanmean(self.changed[-2 * n : -n]), np.mean(self.changed[-n:])
        level = abs(moved - moved_before) <= self.movement_tolerance * moved_before
        still = moved <= self.max_changed or level
        before, last = np.mean(self.elbos[-2 * n : -n]), np.mean(self.elbos[-n:])
        return bool(still and last - before < self.min_elbo_gain * abs(before))

    def _changed_share(self, trainer: Trainer, clusters: torch.Tensor) -> float:
        """Mean total variation distance, over every process's cells, between this epoch's
        q(y | x) and the last epoch's."""
        if self._previous is None or self._previous.shape != clusters.shape:
            return np.nan
        moved = 0.5 * (clusters - self._previous).abs().sum(-1)
        counts = torch.tensor([float(moved.sum()), float(len(clusters))], device=clusters.device)
        n_changed, n_cells = trainer.strategy.reduce(counts, reduce_op="sum").tolist()
        return n_changed / max(n_cells, 1.0)

    @torch.inference_mode()
    def _training_clusters(self, module, loader) -> torch.Tensor:
        dataset = loader.dataset
        rng = np.random.default_rng(self.seed)
        n_cells = len(dataset)
        positions = np.sort(rng.choice(n_cells, min(n_cells, N_TRACKED_CELLS), replace=False))
        dataset.load(positions)
        with evaluating(module):
            clusters = [
                module.posterior_summary(dataset[chunk.tolist()])[-1]
                for chunk in np.array_split(positions, max(1, len(positions) // 1024))
            ]
        return torch.cat(clusters)


def _epoch_elbo(trainer: Trainer, pl_module: LightningModule, validated: bool) -> float:
    """This epoch's ELBO per cell: its validation pass's (``validated``), else its training
    ELBO. Callbacks' ``on_train_epoch_end`` runs before the plan's, which logs the training
    ELBO: ``trainer.callback_metrics`` still holds the previous epoch's, so the plan's own
    means (:meth:`~scvae.train.ScvaeTrainingPlan.epoch_means`) are read instead."""
    metrics = trainer.callback_metrics
    if validated:  # the validation pass ran before the training epoch's end and is logged
        elbo = metrics.get("elbo_validation")
    elif hasattr(pl_module, "epoch_means"):
        elbo = pl_module.epoch_means("train").get("elbo_train")
    else:  # a plan of another kind: the last value logged
        elbo = metrics.get("elbo_train")
    return np.nan if elbo is None else float(elbo)
