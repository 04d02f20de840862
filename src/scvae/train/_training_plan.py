"""scvi-tools' training plan, with metrics accumulated per epoch instead of logged per step."""

import torch
from scvi.module.base import LossOutput
from scvi.train import TrainingPlan
from scvi.train._metrics import ElboMetric

#: Device types with a fused Adam/AdamW kernel in torch.
FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda", "mps", "xpu")


class ScvaeTrainingPlan(TrainingPlan):
    """:class:`scvi.train.TrainingPlan` with a leaner training step and DDP-safe extra metrics.

    scvi-tools logs every training metric at every step (four ELBO metrics, the loss, the KL
    weight and each extra metric, each a Lightning ``log`` call), which on a CPU costs about as
    much as a small model's forward pass. Here a training step only adds to running sums
    (plain tensors, not torchmetrics objects, whose bookkeeping costs more than the sums);
    the epoch means are logged once, when the epoch ends, under the same names
    (``elbo_train``, ``reconstruction_loss_train``, ``kl_local_train``, ``kl_global_train``,
    ``train_loss_epoch``, ``kl_weight``, and ``<metric>_train`` for the module's extra metrics
    such as the GMVAE's ``kl_z_train`` and ``kl_y_train``). Under DDP the sums are added
    across processes before the means are taken.

    Validation runs scvi-tools' step unchanged, except that extra metrics are logged as
    ordinary detached tensors: scvi-tools logs them from inside ``torch.inference_mode``, and
    Lightning's cross-process reduction at the end of a DDP epoch fails on inference tensors.
    """

    def _optimizer_creator_fn(self, optimizer_cls: type[torch.optim.Optimizer]):
        """scvi-tools' Adam or AdamW (same ``lr``, ``eps``, ``weight_decay``), fused.

        The fused kernel updates all parameters in one pass instead of a dozen elementwise
        operations per parameter tensor, which matters on a CPU with wide input and output
        layers (tens of thousands of genes). Parameters on a device without a fused kernel
        get the default implementation.
        """

        def create(parameters) -> torch.optim.Optimizer:
            parameters = list(parameters)
            fused = all(
                p.is_floating_point() and p.device.type in FUSED_OPTIMIZER_DEVICES
                for p in parameters
            )
            return optimizer_cls(
                parameters,
                lr=self.lr,
                eps=self.eps,
                weight_decay=self.weight_decay,
                fused=fused or None,
            )

        return create

    def on_train_epoch_start(self) -> None:
        """Start the epoch's running sums."""
        self._epoch_sums: dict[str, torch.Tensor] = {}
        self._epoch_n_obs = self._epoch_n_batches = 0

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Loss of one minibatch; metrics are accumulated for the end of the epoch."""
        if "kl_weight" in self.loss_kwargs:
            self.loss_kwargs["kl_weight"] = self.kl_weight
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        n_obs = loss_output.n_obs_minibatch
        # Sums over cells (the ELBO terms) or cell-weighted means (loss, extra metrics); the
        # global KL is one value per minibatch, as in scvi-tools' ElboMetric.
        sums = {
            "reconstruction_loss_train": loss_output.reconstruction_loss_sum,
            "kl_local_train": loss_output.kl_local_sum,
            "kl_global_train": loss_output.kl_global_sum,
        }
        values = {"train_loss_epoch": loss_output.loss, **loss_output.extra_metrics}
        for key, value in values.items():
            if isinstance(value, torch.Tensor) and value.dim() == 0:
                name = key if key == "train_loss_epoch" else f"{key}_train"
                sums[name] = value * n_obs
        for key, value in sums.items():
            value = torch.as_tensor(value).detach()
            self._epoch_sums[key] = self._epoch_sums.get(key, 0) + value
        self._epoch_n_obs += n_obs
        self._epoch_n_batches += 1
        return loss_output.loss

    def on_train_epoch_end(self) -> None:
        """Log the epoch's means under scvi-tools' metric names.

        ``elbo_train`` is scvi-tools' training ELBO: per-cell reconstruction loss and local KL
        plus the per-minibatch global KL divided by the number of training cells.
        """
        if not self._epoch_n_obs:
            return
        # One cross-process sum for every running sum and the two counts (last).
        totals = [total.float().reshape(1).to(self.device) for total in self._epoch_sums.values()]
        counts = [float(self._epoch_n_obs), float(self._epoch_n_batches)]
        sums = torch.cat([*totals, torch.tensor(counts, device=self.device)])
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        n_obs, n_batches = sums[-2], sums[-1]
        logged = {
            key: total / (n_batches if key == "kl_global_train" else n_obs)
            for key, total in zip(self._epoch_sums, sums[:-2], strict=True)
        }
        logged["elbo_train"] = (
            logged["reconstruction_loss_train"]
            + logged["kl_local_train"]
            + logged["kl_global_train"] / max(self.n_obs_training or 1, 1)
        )
        if "kl_weight" in self.loss_kwargs:
            logged["kl_weight"] = torch.as_tensor(
                self.loss_kwargs["kl_weight"], dtype=torch.float32
            )
        self.log_dict(logged, on_step=False, on_epoch=True, sync_dist=self.use_sync_dist)

    def compute_and_log_metrics(
        self, loss_output: LossOutput, metrics: dict[str, ElboMetric], mode: str
    ) -> None:
        """Log the ELBO metrics (scvi-tools) and then the extra metrics of ``loss_output``."""
        extra_metrics, loss_output.extra_metrics = loss_output.extra_metrics, {}
        super().compute_and_log_metrics(loss_output, metrics, mode)
        loss_output.extra_metrics = extra_metrics
        for key, value in extra_metrics.items():
            self.log(
                f"{key}_{mode}",
                value.detach().clone(),
                on_step=self.on_step,
                on_epoch=self.on_epoch,
                batch_size=loss_output.n_obs_minibatch,
                sync_dist=self.use_sync_dist,
            )
