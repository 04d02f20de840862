"""Training without Lightning's and scvi-tools' chatter: what a user did not ask for is not
printed."""

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: Loggers whose INFO lines (accelerators found, "Trainer.fit stopped", tips, the seed, files
#: read) are hidden.
CHATTY_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning", "pytorch_lightning", "scvi")
#: Warnings from Lightning and its dependencies about nothing the user can act on.
IGNORED_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)",  # torch's pytree deprecation inside Lightning
    r"The number of training batches .* is smaller than the logging interval",
    r".*does not have many workers",  # scvae's loaders slice in-memory tensors: no workers
    r".*`max_epochs` was not set",
    r"Total length of `list` across ranks is zero",  # no validation cells (train_size=1)
)


@contextmanager
def quiet_training() -> Iterator[None]:
    """Raise Lightning's and scvi-tools' loggers to WARNING and drop :data:`IGNORED_WARNINGS`
    for a block.

    Errors and every other warning still come through; the loggers' levels are restored.
    """
    loggers = [logging.getLogger(name) for name in CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        with warnings.catch_warnings():
            for message in IGNORED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
