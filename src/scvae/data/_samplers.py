"""Minibatch samplers that read a backed (on-disk) count matrix in long contiguous pieces."""

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Sampler

from scvae._arguments import integer_at_least


class BlockShuffleSampler(Sampler):
    """Minibatches of shuffled cells that read a backed file in long contiguous pieces.

    A fully random minibatch from an h5ad on disk costs one small read per cell. Instead, the
    file's rows are cut into blocks of ``block_size`` consecutive rows; every epoch the blocks
    are shuffled, taken ``blocks_per_buffer`` at a time, their cells loaded into memory at once
    (``load``, one slice per block) and shuffled, and minibatches drawn from that buffer. Each
    minibatch thus mixes cells from ``blocks_per_buffer`` random places in the file. Cells left
    over at the end of a buffer open the next one, so every minibatch but the epoch's last is
    full. Without ``shuffle`` the cells come in their given order, loaded a buffer at a time.

    Parameters
    ----------
    rows
        File row of each cell served (the dataset's positions index this array).
    batch_size
        Cells per minibatch.
    load
        Called with the positions of each buffer before its minibatches are drawn.
    block_size
        Consecutive file rows per block.
    blocks_per_buffer
        Blocks loaded together; memory holds about ``block_size * blocks_per_buffer`` cells.
    shuffle
        Shuffle blocks and cells (otherwise the cells are served in order, still buffered).
    drop_last
        Drop the epoch's last incomplete minibatch.
    """

    def __init__(
        self,
        rows: np.ndarray,
        batch_size: int,
        load: Callable[[np.ndarray], None],
        *,
        block_size: int = 1024,
        blocks_per_buffer: int = 16,
        shuffle: bool = True,
        drop_last: bool = False,
    ):
        for name, value in (("block_size", block_size), ("blocks_per_buffer", blocks_per_buffer)):
            if not integer_at_least(value, 1):
                raise ValueError(
                    f"{name} (of datasplitter_kwargs) must be a positive integer, got {value!r}."
                )
        self.rows = np.asarray(rows)
        self.batch_size = batch_size
        self.load = load
        self.block_size = block_size
        self.blocks_per_buffer = blocks_per_buffer
        self.shuffle = shuffle
        self.drop_last = drop_last

    def __len__(self) -> int:
        full, rest = divmod(len(self.rows), self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def __iter__(self):
        if not self.shuffle:
            yield from self._in_order()
            return
        block_ids, block_of_cell = np.unique(self.rows // self.block_size, return_inverse=True)
        by_block = np.argsort(block_of_cell, kind="stable")
        bounds = np.searchsorted(block_of_cell[by_block], np.arange(len(block_ids) + 1))
        order = torch.randperm(len(block_ids)).numpy()
        leftover = np.empty(0, dtype=np.int64)
        for first in range(0, len(order), self.blocks_per_buffer):
            chosen = order[first : first + self.blocks_per_buffer]
            buffer = np.concatenate(
                [leftover, *(by_block[bounds[b] : bounds[b + 1]] for b in chosen)]
            )
            self.load(buffer)
            buffer = buffer[torch.randperm(len(buffer)).numpy()]
            n_full = len(buffer) // self.batch_size * self.batch_size
            for start in range(0, n_full, self.batch_size):
                yield buffer[start : start + self.batch_size].tolist()
            leftover = buffer[n_full:]
        if len(leftover) and not self.drop_last:
            yield leftover.tolist()

    def _in_order(self):
        n_cells = len(self.rows)
        buffer_size = max(1, self.block_size * self.blocks_per_buffer // self.batch_size)
        buffer_size *= self.batch_size
        for first in range(0, n_cells, buffer_size):
            buffer = np.arange(first, min(first + buffer_size, n_cells))
            self.load(buffer)
            for start in range(0, len(buffer), self.batch_size):
                batch = buffer[start : start + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    yield batch.tolist()
