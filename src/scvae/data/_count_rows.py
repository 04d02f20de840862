"""Rows of a registered count matrix as tensors, converted once, whatever the storage.

scvi-tools' :class:`~scvi.dataloaders.AnnDataLoader` slices the AnnData's scipy matrix,
densifies it with numpy and converts it to a tensor for every minibatch. scvae converts the
registered matrix once, to a dense tensor or to CSR, and slices minibatches from it; on a GPU
the tensors live on the device when they fit, so a minibatch never crosses the bus. A backed
(on-disk) AnnData is never loaded whole: rows are read in buffers of a few thousand cells, each
a handful of contiguous row blocks of the file (see :class:`~scvae.data.BlockShuffleSampler`).
"""

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from scvae._counts import csr_from_arrays, csr_row_indices, csr_tensor

#: Count matrices up to this many bytes as float32 are kept dense; larger ones as CSR.
DENSE_LIMIT_BYTES = 2**30
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

    def __init__(self, matrix: Any, *, device: torch.device | str = "cpu", sparse: bool = False):
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
    """Rows read from a file as CSR; dense float16 (which scipy.sparse cannot hold) as float32."""
    if sp.issparse(chunk):
        return sp.csr_matrix(chunk)
    chunk = np.asarray(chunk)
    return sp.csr_matrix(chunk.astype(np.float32) if chunk.dtype == np.float16 else chunk)
