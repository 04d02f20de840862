"""Minibatches sliced from tensors converted once, instead of per-batch scipy round trips.

scvi-tools' :class:`~scvi.dataloaders.AnnDataLoader` slices the AnnData's scipy matrix, densifies
it with numpy and converts it to a tensor for every minibatch. scvae converts the registered
matrix once, to a dense tensor or to CSR, and slices minibatches from it. Training and
validation minibatches of sparse counts stay sparse (torch sparse CSR tensors): the encoders'
input layer and the negative binomial likelihood read only their non-zero entries. On a GPU
the tensors live on the device when they fit, so a minibatch never crosses the bus. A backed
(on-disk) AnnData is never loaded whole: training reads it in buffers of a few thousand cells,
each a handful of contiguous row blocks of the file (:class:`BlockShuffleSampler`), so memory
is bounded by the buffer, not the file, and the disk serves long contiguous reads instead of
one small read per cell.
"""

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
import torch
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.dataloaders import DataSplitter
from scvi.dataloaders._samplers import BatchDistributedSampler
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from scvae._counts import csr_from_arrays, csr_row_indices, csr_tensor

#: Count matrices up to this many bytes as float32 are kept dense; larger ones as CSR.
DENSE_LIMIT_BYTES = 2**30
#: Counts with at most this share of non-zero entries are served as sparse CSR minibatches:
#: below it the encoders' sparse input layer beats a dense matrix product (pbmc10x is 10%
#: non-zero, mouse_bladder 5%; ``docs/scaling.md``).
SPARSE_DENSITY_LIMIT = 0.3
#: Share of free GPU memory the counts may take to be kept on the device.
DEVICE_MEMORY_SHARE = 0.5
#: Backed reads: rows this close together belong to one run ...
MAX_READ_GAP = 32
#: ... and a run of at least this many rows is read as one contiguous slice.
MIN_SLICE_ROWS = 8


class CountRows:
    """Rows of a count matrix as float32 tensors, dense or sparse CSR, whatever the storage.

    Parameters
    ----------
    matrix
        Dense array, scipy sparse matrix, or a backed (on-disk) AnnData matrix.
    device
        Device to hold the converted matrix on (ignored for backed matrices).
    sparse
        Serve rows as torch sparse CSR tensors (of float32 counts) instead of dense ones.
    """

    def __init__(self, matrix, device: torch.device | str = "cpu", sparse: bool = False):
        self.n_cols = matrix.shape[1]
        self.backed = not isinstance(matrix, np.ndarray | sp.spmatrix | sp.sparray)
        self.device = torch.device(device)
        self.sparse = sparse
        self.dense = self.csr = self.crow = None
        self.buffer_rows = self.buffer = None
        if self.backed:
            self.matrix = matrix
        elif not sparse and matrix.shape[0] * matrix.shape[1] * 4 <= DENSE_LIMIT_BYTES:
            dense = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
            self.dense = torch.as_tensor(dense, dtype=torch.float32, device=self.device)
        elif self.device.type == "cpu":
            # scipy slices CSR rows in compiled code, faster than torch operations on a CPU.
            self.csr = _canonical_csr(matrix)
        else:
            csr = _canonical_csr(matrix)
            self.crow = torch.as_tensor(csr.indptr.astype(np.int64), device=self.device)
            self.col = torch.as_tensor(csr.indices.astype(np.int64), device=self.device)
            self.values = torch.as_tensor(csr.data, dtype=torch.float32, device=self.device)

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        if self.backed:
            return self._read_backed(rows)
        rows = rows.to(self.device)
        if self.dense is not None:
            return self.dense.index_select(0, rows)  # faster than advanced indexing on a CPU
        if self.csr is not None:
            return self._served(self.csr[rows.numpy()])
        return self._gather_csr(rows)

    def _served(self, rows: sp.csr_matrix) -> torch.Tensor:
        """Rows read into a scipy CSR matrix, in the served layout."""
        if self.sparse:
            return csr_tensor(rows)
        return torch.as_tensor(rows.toarray(), dtype=torch.float32)

    def _gather_csr(self, rows: torch.Tensor) -> torch.Tensor:
        """The rows ``rows`` of the device-resident CSR matrix, in the served layout."""
        row_ptr, col, values = csr_rows(self.crow, self.col, self.values, rows)
        if self.sparse:
            return csr_from_arrays(row_ptr, col, values, (len(rows), self.n_cols))
        out = torch.zeros(len(rows), self.n_cols, device=self.device)
        out[csr_row_indices(row_ptr, len(col)), col] = values
        return out

    def load(self, rows: np.ndarray) -> None:
        """Read these rows of a backed matrix into memory; minibatches within them skip the disk."""
        self.buffer_rows = np.unique(rows)
        self.buffer = _read_rows(self.matrix, self.buffer_rows)

    def _read_backed(self, rows: torch.Tensor) -> torch.Tensor:
        """These rows, from the loaded buffer when it holds them, else from disk."""
        rows = rows.cpu().numpy()
        if self.buffer_rows is not None:
            where = np.searchsorted(self.buffer_rows, rows).clip(max=len(self.buffer_rows) - 1)
            if (self.buffer_rows[where] == rows).all():
                return self._served(self.buffer[where])
        unique_rows, inverse = np.unique(rows, return_inverse=True)  # sorted, as h5py wants
        return self._served(_read_rows(self.matrix, unique_rows)[inverse])


def csr_rows(
    crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows ``rows`` of the CSR matrix ``(crow, col, values)``, as CSR arrays, with vectorised
    torch operations on the arrays' device (no Python loop over rows)."""
    starts = crow[rows]
    lengths = crow[rows + 1] - starts
    row_ptr = torch.zeros(len(rows) + 1, dtype=crow.dtype, device=crow.device)
    torch.cumsum(lengths, 0, out=row_ptr[1:])
    first_entry = torch.repeat_interleave(row_ptr[:-1], lengths)
    position = torch.repeat_interleave(starts, lengths) + (
        torch.arange(len(first_entry), device=crow.device) - first_entry
    )
    return row_ptr, col[position], values[position]


def _read_rows(matrix, rows: np.ndarray) -> sp.csr_matrix:
    """Sorted, distinct ``rows`` of a backed matrix, in as few reads as possible.

    Rows at most :data:`MAX_READ_GAP` apart form a run. Each run of at least
    :data:`MIN_SLICE_ROWS` rows is read as one contiguous slice (the rows in between are
    dropped); the scattered rest is read by a single list-of-rows read.
    """
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > MAX_READ_GAP) + 1)
    long_runs = [run for run in runs if len(run) >= MIN_SLICE_ROWS]
    scattered = [run for run in runs if len(run) < MIN_SLICE_ROWS]
    pieces, piece_rows = [], []
    for run in long_runs:
        start = int(run[0])
        pieces.append(_as_csr(matrix[start : int(run[-1]) + 1])[run - start])
        piece_rows.append(run)
    if scattered:
        piece_rows.append(np.concatenate(scattered))
        pieces.append(_as_csr(matrix[piece_rows[-1]]))
    stacked = sp.vstack(pieces, format="csr", dtype=np.float32)
    return _canonical_csr(stacked[np.argsort(np.concatenate(piece_rows))])


def _canonical_csr(matrix) -> sp.csr_matrix:
    """``matrix`` as a float32 CSR matrix without duplicate entries (summed, as ``toarray``
    would), leaving the input untouched. Sparse minibatches are read entry by entry, so a
    count stored as two entries must be one."""
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    if not csr.has_canonical_format:  # rare: a copy, as csr may share the input's arrays
        csr = csr.copy()
        csr.sum_duplicates()
    return csr


def _as_csr(chunk) -> sp.csr_matrix:
    return sp.csr_matrix(chunk) if sp.issparse(chunk) else sp.csr_matrix(np.asarray(chunk))


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
        load,
        block_size: int = 1024,
        blocks_per_buffer: int = 16,
        shuffle: bool = True,
        drop_last: bool = False,
    ):
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
        device: torch.device | str = "cpu",
        sparse: bool = False,
    ):
        self.n_obs = len(indices)
        counts = adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        backed = adata_manager.adata.isbacked
        self.indices = torch.as_tensor(indices, dtype=torch.long)
        # In memory: convert only the served cells; backed: keep the file and map indices.
        self.counts = CountRows(counts if backed else counts[indices], device, sparse)
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


class TensorDataLoader(DataLoader):
    """Drop-in replacement of scvi-tools' ``AnnDataLoader`` serving :class:`RegisteredTensors`.

    Accepts the same arguments (those it has no use for are ignored), so scvi-tools' model
    methods and data splitter use it as is.

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
    load_sparse_tensor
        Serve the counts as torch sparse CSR tensors. scvae's modules read them as they are
        (their likelihoods densify them where they need to); a module that indexes the counts
        densely needs ``False``.
    block_size, blocks_per_buffer
        Backed data only: how :class:`BlockShuffleSampler` reads the file (not used with
        ``distributed_sampler``, where each minibatch is read row by row).
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
        load_sparse_tensor: bool = False,
        block_size: int = 1024,
        blocks_per_buffer: int = 16,
        **kwargs,
    ):
        if indices is None:
            indices = np.arange(adata_manager.adata.n_obs)
        indices = np.asarray(indices)
        if indices.dtype == bool:
            indices = np.flatnonzero(indices)
        dataset = RegisteredTensors(adata_manager, indices, device, load_sparse_tensor)
        batch_size = batch_size or 128
        if distributed_sampler:
            sampler = BatchDistributedSampler(
                dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last
            )
        elif dataset.counts.backed:
            sampler = dataset.minibatches(
                batch_size, shuffle, drop_last, block_size, blocks_per_buffer
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

    ``load_sparse_tensor`` (an argument of the models' ``train``) chooses between sparse CSR
    and dense training and validation minibatches; by default (``None``) they are sparse when
    the counts are (at most :data:`SPARSE_DENSITY_LIMIT` of the entries non-zero, or read
    from a backed file).
    """

    data_loader_cls = TensorDataLoader

    def __init__(
        self,
        adata_manager: AnnDataManager,
        *args,
        load_sparse_tensor: bool | None = None,
        **kwargs,
    ):
        sparse = bool(load_sparse_tensor)
        super().__init__(adata_manager, *args, load_sparse_tensor=sparse, **kwargs)
        if load_sparse_tensor is None:
            self.load_sparse_tensor = counts_are_sparse(adata_manager)

    def setup(self, stage: str | None = None) -> None:
        """Split the cells and choose where the tensors live."""
        super().setup(stage)
        device = self._device()
        self.data_loader_kwargs["device"] = device
        on_gpu_from_host = self._trainer_device().type == "cuda" and device.type == "cpu"
        self.pin_memory = self.pin_memory or on_gpu_from_host

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """The minibatch as it is: scvi-tools densifies sparse counts here, scvae reads them."""
        return batch

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


def counts_are_sparse(adata_manager: AnnDataManager) -> bool:
    """Whether the registered counts are sparse enough to be served as sparse CSR minibatches.

    Backed counts always are: they are read from the file as CSR rows.
    """
    if adata_manager.adata.isbacked:
        return True
    counts = adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
    n_entries = counts.shape[0] * counts.shape[1]
    n_nonzero = counts.nnz if sp.issparse(counts) else np.count_nonzero(counts)
    return n_entries > 0 and n_nonzero <= SPARSE_DENSITY_LIMIT * n_entries
