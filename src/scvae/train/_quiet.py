"""Training without Lightning's and scvi-tools' chatter: what a user did not ask for is not
printed."""

import io
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout

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
#: What scvi-tools prints to stdout before it re-raises an error of training.
FAILURE_PRINT = "Exception raised during training."


class WithoutFailurePrint(io.TextIOBase):
    """``stream``, less scvi-tools' :data:`FAILURE_PRINT` line: ``print`` writes its
    arguments one by one and then its end, so from that argument on, writes are dropped up
    to and with a write of ``"\n"`` alone (an error's message may hold newlines itself)."""

    def __init__(self, stream):
        self.stream, self.dropping = stream, False

    def __getattr__(self, name: str):  # buffer, line_buffering, ...: the stream's
        return getattr(self.stream, name)

    def write(self, text: str) -> int:
        if text == FAILURE_PRINT:
            self.dropping = True
        if not self.dropping:
            return self.stream.write(text)
        self.dropping = text != "\n"
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:
        return getattr(self.stream, "errors", None)


@contextmanager
def quiet_training() -> Iterator[None]:
    """Raise Lightning's and scvi-tools' loggers to WARNING and drop :data:`IGNORED_WARNINGS`
    for a block.

    Errors and every other warning still come through (scvi-tools' print of an error's
    name before the error itself does not); the loggers' levels are restored.
    """
    loggers = [logging.getLogger(name) for name in CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        with warnings.catch_warnings(), redirect_stdout(WithoutFailurePrint(sys.stdout)):
            for message in IGNORED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
