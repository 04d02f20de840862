"""Minibatches sliced from tensors converted once, instead of per-batch scipy round trips.

scvi-tools' :class:`~scvi.dataloaders.AnnDataLoader` slices the AnnData's scipy matrix, densifies
it with numpy and converts it to a tensor for every minibatch. scvae converts the registered
matrix once, to a dense tensor when it is small and to CSR arrays otherwise, and slices
minibatches with torch. On a GPU the tensors live on the device when they fit, so a minibatch
never crosses the bus. A backed (on-disk) AnnData is read a minibatch at a time, so memory is
bounded by the batch, not the file.
"""

import numpy as np
import scipy.sparse as sp
import torch
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.dataloaders import DataSplitter
from scvi.dataloaders._samplers import BatchDistributedSampler
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

#: Count matrices up to this many bytes as float32 are kept dense; larger ones as CSR.
DENSE_LIMIT_BYTES = 2**30
#: Share of free GPU memory the counts may take to be kept on the device.
DEVICE_MEMORY_SHARE = 0.5


class CountRows:
    """Rows of a count matrix as float32 tensors, whatever the storage.

    Parameters
    ----------
    matrix
        Dense array, scipy sparse matrix, or a backed (on-disk) AnnData matrix.
    device
        Device to hold the converted matrix on (ignored for backed matrices).
    """

    def __init__(self, matrix, device: torch.device | str = "cpu"):
        self.n_cols = matrix.shape[1]
        self.backed = not isinstance(matrix, np.ndarray | sp.spmatrix | sp.sparray)
        self.device = torch.device(device)
        self.dense = self.crow = None
        if self.backed:
            self.matrix = matrix
        elif matrix.shape[0] * matrix.shape[1] * 4 <= DENSE_LIMIT_BYTES:
            dense = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
            self.dense = torch.as_tensor(dense, dtype=torch.float32, device=self.device)
        else:
            csr = sp.csr_matrix(matrix)
            self.crow = torch.as_tensor(csr.indptr.astype(np.int64), device=self.device)
            self.col = torch.as_tensor(csr.indices.astype(np.int64), device=self.device)
            self.values = torch.as_tensor(csr.data, dtype=torch.float32, device=self.device)

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        if self.backed:
            return self._read_backed(rows)
        rows = rows.to(self.device)
        if self.dense is not None:
            return self.dense[rows]
        return self._gather_csr(rows)

    def _gather_csr(self, rows: torch.Tensor) -> torch.Tensor:
        """Densify the CSR rows ``rows`` with vectorised torch ops (no Python loop)."""
        starts = self.crow[rows]
        lengths = self.crow[rows + 1] - starts
        row_of_entry = torch.repeat_interleave(torch.arange(len(rows), device=self.device), lengths)
        first_entry = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
        position = torch.repeat_interleave(starts, lengths) + (
            torch.arange(len(row_of_entry), device=self.device) - first_entry
        )
        out = torch.zeros(len(rows), self.n_cols, device=self.device)
        out[row_of_entry, self.col[position]] = self.values[position]
        return out

    def _read_backed(self, rows: torch.Tensor) -> torch.Tensor:
        """Read only these rows from disk (h5py wants them sorted, so sort and restore)."""
        rows = rows.cpu().numpy()
        order = np.argsort(rows)
        chunk = self.matrix[rows[order]]
        chunk = chunk.toarray() if sp.issparse(chunk) else np.asarray(chunk)
        restored = np.empty_like(chunk)
        restored[order] = chunk
        return torch.as_tensor(restored, dtype=torch.float32)


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
    """

    def __init__(
        self,
        adata_manager: AnnDataManager,
        indices: np.ndarray,
        device: torch.device | str = "cpu",
    ):
        self.n_obs = len(indices)
        counts = adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        backed = adata_manager.adata.isbacked
        self.indices = torch.as_tensor(indices, dtype=torch.long)
        # In memory: convert only the served cells; backed: keep the file and map indices.
        self.counts = CountRows(counts if backed else counts[indices], device)
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

    def __getitem__(self, batch: list[int]) -> dict[str, torch.Tensor]:
        positions = torch.as_tensor(batch, dtype=torch.long)
        rows = positions if self.row_offset is None else self.row_offset[positions]
        tensors = {REGISTRY_KEYS.X_KEY: self.counts[rows]}
        device = tensors[REGISTRY_KEYS.X_KEY].device
        for key, values in self.fields.items():
            tensors[key] = values[positions.to(values.device)].to(device)
        return tensors


class TensorDataLoader(DataLoader):
    """Drop-in replacement of scvi-tools' ``AnnDataLoader`` serving :class:`RegisteredTensors`.

    Accepts the same arguments (those it has no use for, such as ``load_sparse_tensor``, are
    ignored), so scvi-tools' model methods and data splitter use it as is.

    Parameters
    ----------
    adata_manager
        Manager of the registered AnnData.
    indices
        Cells to serve (integers or a boolean mask); all by default.
    batch_size
        Cells per minibatch.
    shuffle
        Shuffle the cells every epoch.
    drop_last
        Drop the last incomplete minibatch.
    distributed_sampler
        Shard the cells across DDP processes.
    device
        Where to keep the converted tensors (``"cpu"`` unless the data splitter chose a GPU).
    pin_memory
        Serve minibatches in page-locked memory, so that copies to a GPU run asynchronously
        (ignored without CUDA).
    **kwargs
        Accepted for compatibility and ignored.
    """

    def __init__(
        self,
        adata_manager: AnnDataManager,
        indices=None,
        batch_size: int = 128,
        shuffle: bool = False,
        drop_last: bool = False,
        distributed_sampler: bool = False,
        device: torch.device | str = "cpu",
        pin_memory: bool = False,
        **kwargs,
    ):
        if indices is None:
            indices = np.arange(adata_manager.adata.n_obs)
        indices = np.asarray(indices)
        if indices.dtype == bool:
            indices = np.flatnonzero(indices)
        dataset = RegisteredTensors(adata_manager, indices, device)
        batch_size = batch_size or 128
        if distributed_sampler:
            sampler = BatchDistributedSampler(
                dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last
            )
        else:
            order = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
            sampler = BatchSampler(order, batch_size=batch_size, drop_last=drop_last)
        pin_memory = (
            pin_memory and torch.cuda.is_available() and dataset.counts.device.type == "cpu"
        )
        super().__init__(dataset, sampler=sampler, batch_size=None, pin_memory=pin_memory)


class TensorDataSplitter(DataSplitter):
    """scvi-tools' :class:`~scvi.dataloaders.DataSplitter` serving :class:`TensorDataLoader`.

    Splits cells exactly like scvi-tools. When training on a GPU and the counts take less than
    half of its free memory, the tensors are put on the GPU once and minibatches are sliced
    there; otherwise minibatches are served in pinned memory for asynchronous copies.
    """

    data_loader_cls = TensorDataLoader

    def setup(self, stage: str | None = None) -> None:
        """Split the cells and choose where the tensors live."""
        super().setup(stage)
        device = self._device()
        self.data_loader_kwargs["device"] = device
        on_gpu_from_host = self._trainer_device().type == "cuda" and device.type == "cpu"
        self.pin_memory = self.pin_memory or on_gpu_from_host

    def val_dataloader(self) -> DataLoader | list:
        """Validation minibatches; an empty list (not ``None``) when there is no validation set.

        Lightning refuses ``None`` when validation runs every epoch, which scvae asks for so
        that the history holds the validation ELBO.
        """
        return super().val_dataloader() or []

    def _trainer_device(self) -> torch.device:
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def _device(self) -> torch.device:
        device = self._trainer_device()
        if device.type != "cuda" or self.adata_manager.adata.isbacked:
            return torch.device("cpu")
        counts = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        n_bytes = 12 * counts.nnz if sp.issparse(counts) else 4 * np.prod(counts.shape)
        free, _ = torch.cuda.mem_get_info(device)
        return device if n_bytes < DEVICE_MEMORY_SHARE * free else torch.device("cpu")
