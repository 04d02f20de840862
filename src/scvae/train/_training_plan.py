"""scvi-tools' training plan, with extra metrics logged so that they also work under DDP."""

from scvi.module.base import LossOutput
from scvi.train import TrainingPlan
from scvi.train._metrics import ElboMetric


class ScvaeTrainingPlan(TrainingPlan):
    """:class:`scvi.train.TrainingPlan` that logs extra metrics (e.g. the GMVAE's KL terms for
    z and y) outside inference mode.

    scvi-tools logs extra metrics from inside ``torch.inference_mode``; Lightning's state for
    them then holds inference tensors, and its cross-process reduction at the end of a DDP epoch
    fails on them. Here the ELBO metrics go through scvi-tools unchanged and the extra ones are
    logged afterwards, as ordinary detached tensors.
    """

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
