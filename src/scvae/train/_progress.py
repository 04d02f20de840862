"""A progress bar with one step per epoch that shows the training and validation ELBO."""

import sys

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar
from tqdm.auto import tqdm

#: Metrics shown after the bar, with their labels.
SHOWN = {"elbo_train": "ELBO train", "elbo_validation": "validation"}


class EpochProgressBar(ProgressBar):
    """One bar over the epochs (on stderr), labelled with the epoch's ELBOs per cell.

    The metrics of an epoch are logged when it ends, after the bar's own end-of-epoch hook
    has run; the bar therefore shows them when the next epoch starts, and when training ends.
    """

    def __init__(self):
        super().__init__()
        self._enabled = True
        self.bar: tqdm | None = None

    def disable(self) -> None:
        """Hide the bar (Lightning calls this on processes other than the first)."""
        self._enabled = False

    def enable(self) -> None:
        """Show the bar."""
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        """Whether the bar is shown."""
        return self._enabled

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Open the bar."""
        self.bar = tqdm(
            total=trainer.max_epochs, desc="Training", unit="epoch", disable=not self._enabled
        )

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Show the previous epoch's ELBOs."""
        if trainer.current_epoch:
            self._advance(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Show the last epoch's ELBOs, close the bar, and under it say why training stopped
        early (a callback's ``stop_message``, e.g. :class:`~scvae.train.ClusterConvergence`)."""
        if self.bar is not None:
            self._advance(trainer)
            self.bar.close()
            self.bar = None
            if self._enabled:
                for callback in trainer.callbacks:
                    if message := getattr(callback, "stop_message", None):
                        tqdm.write(message, file=sys.stderr)

    def _advance(self, trainer: Trainer) -> None:
        metrics = trainer.progress_bar_metrics
        self.bar.set_postfix(
            {label: f"{float(metrics[key]):.1f}" for key, label in SHOWN.items() if key in metrics},
            refresh=False,
        )
        self.bar.update(trainer.current_epoch - self.bar.n)
