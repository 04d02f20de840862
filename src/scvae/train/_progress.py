"""A progress bar with one step per epoch that shows the training and validation ELBO, and
the report under it of why training stopped early."""

import sys

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ProgressBar
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
        """Show the last epoch's ELBOs and close the bar."""
        if self.bar is not None:
            self._advance(trainer)
            self.bar.close()
            self.bar = None

    def _advance(self, trainer: Trainer) -> None:
        metrics = trainer.progress_bar_metrics
        self.bar.set_postfix(
            {label: f"{float(metrics[key]):.1f}" for key, label in SHOWN.items() if key in metrics},
            refresh=False,
        )
        self.bar.update(trainer.current_epoch - self.bar.n)


class StopReport(Callback):
    """Says, under the progress bar (on stderr, from the first process only), why training
    ended before ``max_epochs``: the ``stop_message`` of each callback that has one, such
    as :class:`~scvae.train.ClusterConvergence`. Put it after the bar among the callbacks."""

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write the messages."""
        if trainer.is_global_zero:
            for callback in trainer.callbacks:
                if message := getattr(callback, "stop_message", None):
                    tqdm.write(message, file=sys.stderr)


def with_progress_report(
    callbacks: list[Callback], enable_progress_bar: bool, simple_progress_bar: bool
) -> tuple[list[Callback], bool]:
    """``callbacks`` with the fit's progress report, and whether the trainer shows a bar.

    The bar is an :class:`EpochProgressBar` unless ``callbacks`` hold a Lightning progress
    bar of the user's (shown whatever ``enable_progress_bar`` says), or scvi-tools adds its
    own (``simple_progress_bar``); under whichever bar is shown, a :class:`StopReport`.
    """
    own_bar = any(isinstance(callback, ProgressBar) for callback in callbacks)
    if enable_progress_bar and not (own_bar or simple_progress_bar):
        callbacks = [*callbacks, EpochProgressBar()]
    shown = enable_progress_bar or own_bar
    return ([*callbacks, StopReport()] if shown else callbacks), shown
