"""scvi-tools' training plan with per-epoch metrics, ELBOs with the user's sign and fused Adam."""

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
from scvi.module.base import BaseModuleClass, LossOutput
from scvi.train import TrainingPlan
from torch.optim.lr_scheduler import ReduceLROnPlateau

#: Optimisers given a fused kernel (``optimizer=`` of :class:`scvi.train.TrainingPlan`).
FUSED_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
}
#: Device types with a fused Adam/AdamW kernel in torch.
FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda", "mps", "xpu")
#: Monitored metrics that improve upwards (the ELBOs); every other one is a loss.
INCREASING_METRICS = ("elbo_train", "elbo_validation")
#: The ELBO and its terms, logged per epoch as ``<term>_train`` and ``<term>_validation``.
EPOCH_TERMS = ("elbo", "reconstruction_loss", "kl_local", "kl_global")


def logged_metrics(module: BaseModuleClass) -> tuple[str, ...]:
    """The metrics :class:`ScvaeTrainingPlan` logs for ``module`` once per epoch, which early
    stopping (``early_stopping_monitor``) and the plateau schedule (``lr_scheduler_metric``)
    can follow: :data:`EPOCH_TERMS` and the module's ``extra_metric_names`` (the GMVAEs'
    ``kl_z`` and ``kl_y``) for training and validation, the two losses and the KL weight (if
    the module's loss takes one)."""
    terms = (*EPOCH_TERMS, *getattr(module, "extra_metric_names", ()))
    names = [f"{term}_{mode}" for mode in ("train", "validation") for term in terms]
    names += ["train_loss_epoch", "validation_loss"]
    if "kl_weight" in inspect.signature(module.loss).parameters:
        names.append("kl_weight")
    return tuple(names)


def metric_mode(metric: str) -> str:
    """``"max"`` for a metric of the history that rises as the fit improves (the ELBOs),
    ``"min"`` for one that falls (the losses), as Lightning's monitors take it."""
    return "max" if metric in INCREASING_METRICS else "min"


def fused_optimizer_creator(optimizer_cls: type[torch.optim.Optimizer], **options):
    """An ``optimizer_creator`` for :class:`scvi.train.TrainingPlan`: ``optimizer_cls`` with
    ``options``, fused when every parameter is on a device with a fused kernel.

    The fused kernel updates all parameters in one pass instead of a dozen elementwise
    operations per parameter tensor, which matters on a CPU with wide input and output layers
    (tens of thousands of genes).
    """

    def create(parameters) -> torch.optim.Optimizer:
        parameters = list(parameters)
        fused = all(
            p.is_floating_point() and p.device.type in FUSED_OPTIMIZER_DEVICES for p in parameters
        )
        return optimizer_cls(parameters, fused=fused or None, **options)

    return create


class EpochSums:
    """Running sums of a step's loss terms over an epoch, reduced across processes at its end.

    The ELBO terms are summed over cells; the loss and the module's extra metrics (0-d
    tensors, minibatch means) are weighted by the minibatch's cells; the global KL is one value
    per minibatch, as in scvi-tools.
    """

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.n_obs = self.n_batches = 0
        self._means: dict[str, torch.Tensor] | None = None

    def add(self, loss_output: LossOutput) -> None:
        """Add one minibatch's terms."""
        n_obs = loss_output.n_obs_minibatch
        sums = {
            "reconstruction_loss": loss_output.reconstruction_loss_sum,
            "kl_local": loss_output.kl_local_sum,
            "kl_global": loss_output.kl_global_sum,
            "loss": loss_output.loss * n_obs,
        }
        for key, value in loss_output.extra_metrics.items():
            if isinstance(value, torch.Tensor) and value.dim() == 0:
                sums[key] = value * n_obs
        for key, value in sums.items():
            self.sums[key] = self.sums.get(key, 0) + torch.as_tensor(value).detach()
        self.n_obs += n_obs
        self.n_batches += 1
        self._means = None

    def means(self, strategy, device: torch.device, n_obs_total: int) -> dict[str, torch.Tensor]:
        """Means per cell over every process (one collective sum), and the ELBO.

        ``elbo`` is minus the per-cell reconstruction loss and local KL and the per-minibatch
        global KL spread over ``n_obs_total`` cells, so that it has the sign of
        :meth:`~scvae.model.ScvaeModel.get_elbo` (higher is better). Computed once until
        the next minibatch is added (every process must ask as often as the others).
        """
        if self._means is not None:
            return dict(self._means)
        totals = [total.float().reshape(1).to(device) for total in self.sums.values()]
        counts = torch.tensor([float(self.n_obs), float(self.n_batches)], device=device)
        reduced = strategy.reduce(torch.cat([*totals, counts]), reduce_op="sum")
        n_obs, n_batches = reduced[-2], reduced[-1]
        means = {
            key: total / (n_batches if key == "kl_global" else n_obs)
            for key, total in zip(self.sums, reduced[:-2], strict=True)
        }
        means["elbo"] = -(
            means["reconstruction_loss"]
            + means["kl_local"]
            + means["kl_global"] / max(n_obs_total, 1)
        )
        self._means = means
        return dict(means)


class ScvaeTrainingPlan(TrainingPlan):
    """:class:`scvi.train.TrainingPlan` with per-epoch metrics and a fused optimiser.

    scvi-tools logs every training metric at every step, which on a CPU costs about as much as
    a small model's forward pass. Here a step only adds to running sums (:class:`EpochSums`);
    the epoch means are logged once, when the epoch ends (under DDP, summed across processes
    first):

    * ``elbo_train`` and ``elbo_validation``: the ELBO per cell, with the sign of
      :meth:`~scvae.model.ScvaeModel.get_elbo` (higher is better; scvi-tools' own history
      holds its negative). Both are shown on the progress bar.
    * ``reconstruction_loss_*``, ``kl_local_*``, ``kl_global_*``: its terms, as losses;
      ``train_loss_epoch`` and ``validation_loss``: the optimised loss (KL weight applied);
      ``kl_weight``; and ``<metric>_train`` / ``<metric>_validation`` for the module's extra
      metrics (the GMVAE's ``kl_z`` and ``kl_y``).

    ``optimizer="Adam"`` or ``"AdamW"`` (with ``lr``, ``eps``, ``weight_decay`` as in
    scvi-tools) gets the fused kernel (:func:`fused_optimizer_creator`), and
    ``reduce_lr_on_plateau`` watches its metric in the direction it improves.

    Parameters
    ----------
    module
        The module to train.
    **kwargs
        As for :class:`scvi.train.TrainingPlan`.
    """

    def __init__(self, module: BaseModuleClass, **kwargs: Any):
        if kwargs.get("n_steps_kl_warmup") is not None:  # else scvi-tools' 400 epochs prevail
            kwargs.setdefault("n_epochs_kl_warmup", None)
        super().__init__(module, **kwargs)
        self._sums = {"train": EpochSums(), "validation": EpochSums()}

    def get_optimizer_creator(self) -> Callable[[Iterable[torch.Tensor]], torch.optim.Optimizer]:
        """scvi-tools' ``"Adam"`` and ``"AdamW"`` (its ``lr``, ``eps``, ``weight_decay``) with
        the fused kernel (:func:`fused_optimizer_creator`); any other as scvi-tools makes it."""
        if self.optimizer_name in FUSED_OPTIMIZERS:
            return fused_optimizer_creator(
                FUSED_OPTIMIZERS[self.optimizer_name],
                lr=self.lr,
                eps=self.eps,
                weight_decay=self.weight_decay,
            )
        return super().get_optimizer_creator()

    def configure_optimizers(self) -> dict[str, Any]:
        """scvi-tools' optimiser; the plateau scheduler, if asked for, knows the ELBO rises."""
        config = super().configure_optimizers()
        if self.reduce_lr_on_plateau:
            metric = self.lr_scheduler_metric
            config["lr_scheduler"]["scheduler"] = ReduceLROnPlateau(
                config["optimizer"],
                mode=metric_mode(metric),
                patience=self.lr_patience,
                factor=self.lr_factor,
                threshold=self.lr_threshold,
                min_lr=self.lr_min,
                threshold_mode="abs",
            )
        return config

    def on_train_epoch_start(self) -> None:
        """Start the epoch's running sums."""
        self._sums["train"] = EpochSums()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Loss of one minibatch; its terms are added to the epoch's sums.

        Parameters
        ----------
        batch
            The minibatch, by scvi-tools' registry keys.
        batch_idx
            Its index in the epoch.
        """
        if "kl_weight" in self.loss_kwargs:
            self.loss_kwargs["kl_weight"] = self.kl_weight
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._sums["train"].add(loss_output)
        return loss_output.loss

    def on_validation_epoch_start(self) -> None:
        """Start the validation pass's running sums."""
        self._sums["validation"] = EpochSums()

    def validation_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int
    ) -> dict[str, torch.Tensor] | None:
        """Add one validation minibatch's terms (loss with the current KL weight); for a
        module with a cluster variable, return its cells' q(y | x) as ``{"qy": ...}``, which
        callbacks receive in ``on_validation_batch_end``.

        Parameters
        ----------
        batch
            The minibatch, by scvi-tools' registry keys.
        batch_idx
            Its index in the validation pass.
        """
        inference_outputs, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._sums["validation"].add(loss_output)
        if "qy_logits" in inference_outputs:
            return {"qy": torch.softmax(inference_outputs["qy_logits"].detach(), -1)}
        return None

    def on_train_epoch_end(self) -> None:
        """Log the training epoch's means."""
        logged = self.epoch_means("train")
        if "kl_weight" in self.loss_kwargs:
            logged["kl_weight"] = torch.as_tensor(float(self.kl_weight), device=self.device)
        self._log(logged)

    def on_validation_epoch_end(self) -> None:
        """Log the validation pass's means (not during Lightning's sanity check)."""
        if not self.trainer.sanity_checking:
            self._log(self.epoch_means("validation"))

    def epoch_means(self, mode: str) -> dict[str, torch.Tensor]:
        """The means of the epoch's minibatches so far (``"train"``) or of the last validation
        pass (``"validation"``), by the names they are logged under (``elbo_train``, ...):
        what the plan logs when the epoch or pass ends. Callbacks' ``on_train_epoch_end``
        runs before the plan's, when ``trainer.callback_metrics`` still holds the previous
        epoch's training metrics; this holds the current one's. Every process must call it
        (under DDP it sums across processes, once per epoch).

        Parameters
        ----------
        mode
            ``"train"`` or ``"validation"``.
        """
        sums = self._sums[mode]
        if not sums.n_obs:
            return {}
        n_total = self.n_obs_training if mode == "train" else self.n_obs_validation
        means = sums.means(self.trainer.strategy, self.device, n_total or 1)
        loss_name = "train_loss_epoch" if mode == "train" else "validation_loss"
        return {(loss_name if key == "loss" else f"{key}_{mode}"): v for key, v in means.items()}

    def _log(self, logged: dict[str, torch.Tensor]) -> None:
        # Already reduced across processes: logging must not reduce again.
        for key, value in logged.items():
            self.log(key, value, on_step=False, on_epoch=True, prog_bar=key in INCREASING_METRICS)
