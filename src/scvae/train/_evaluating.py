"""A torch module in evaluation mode for a block of inference inside training."""

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in evaluation mode (dropout off, batch statistics frozen) in the block, and
    back in the mode it was in afterwards, also when the block fails.

    Parameters
    ----------
    module
        The module, e.g. a GMVAE module between training steps.
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
