"""The registered fields of an AnnData as tensors; indexing takes a whole minibatch."""

from collections.abc import Iterable

import numpy as np
import torch
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from torch.utils.data import Dataset

from ._count_rows import CountRows
from ._samplers import BlockShuffleSampler


class RegisteredTensors(Dataset):
    """The registered fields of an AnnData, converted once; indexing takes a whole minibatch.

    Parameters
    ----------
    adata_manager
        Manager of the registered AnnData.
    indices
        Cells to serve, in the AnnData's numbering.
    device
        Where to keep the tensors.
    sparse
        Serve the counts as torch sparse CSR tensors.
    """

    def __init__(
        self,
        adata_manager: AnnDataManager,
        indices: np.ndarray,
        *,
        device: torch.device | str = "cpu",
        sparse: bool = False,
    ):
        self.n_obs = len(indices)
        counts = adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        backed = adata_manager.adata.isbacked
        self.indices = torch.as_tensor(indices, dtype=torch.long)
        # In memory: convert only the served cells; backed: keep the file and map indices.
        self.counts = CountRows(counts if backed else counts[indices], device=device, sparse=sparse)
        self.row_offset = self.indices if backed else None
        self.fields = {
            key: torch.as_tensor(
                np.asarray(adata_manager.get_from_registry(key))[indices],
                dtype=torch.float32,
                device=self.counts.device if not backed else "cpu",
            )
            for key in adata_manager.data_registry
            if key != REGISTRY_KEYS.X_KEY
        }

    def __len__(self) -> int:
        return self.n_obs

    def load(self, positions: np.ndarray) -> None:
        """Read the counts of these positions into memory (backed data only; no-op otherwise)."""
        if self.counts.backed:
            self.counts.load(self.indices.numpy()[positions])

    def minibatches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        block_size: int = 1024,
        blocks_per_buffer: int = 16,
    ) -> Iterable:
        """Minibatches of positions: random (or in order), block-shuffled for backed data.

        Parameters
        ----------
        batch_size
            Cells per minibatch.
        shuffle
            Shuffle the cells every pass.
        drop_last
            Drop the last incomplete minibatch.
        block_size, blocks_per_buffer
            Backed data only: see :class:`BlockShuffleSampler`.
        """
        if self.counts.backed:
            return BlockShuffleSampler(
                self.indices.numpy(),
                batch_size,
                self.load,
                block_size=block_size,
                blocks_per_buffer=blocks_per_buffer,
                shuffle=shuffle,
                drop_last=drop_last,
            )
        order = torch.randperm(self.n_obs) if shuffle else torch.arange(self.n_obs)
        batches = list(order.split(batch_size))
        return batches[:-1] if drop_last and len(batches[-1]) < batch_size else batches

    def __getitem__(self, batch: list[int]) -> dict[str, torch.Tensor]:
        positions = torch.as_tensor(batch, dtype=torch.long)
        rows = positions if self.row_offset is None else self.row_offset[positions]
        tensors = {REGISTRY_KEYS.X_KEY: self.counts[rows]}
        device = tensors[REGISTRY_KEYS.X_KEY].device
        for key, values in self.fields.items():
            tensors[key] = values.index_select(0, positions.to(values.device)).to(device)
        return tensors
