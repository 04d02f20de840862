"""Minibatch count matrices: dense tensors or torch sparse CSR tensors.

Training minibatches of sparse data come as sparse CSR tensors (see
:class:`~scvae.data.TensorDataLoader`): the encoders' input layer and the negative binomial
read only their non-zero counts. Everything else takes either layout through these helpers.
"""

import warnings

import scipy.sparse as sp
import torch
from torch import Tensor


def is_sparse_csr(x: Tensor) -> bool:
    """Whether ``x`` is a torch sparse CSR tensor."""
    return x.layout == torch.sparse_csr


def dense_counts(x: Tensor) -> Tensor:
    """``x`` as a dense tensor (unchanged if it is one)."""
    return x.to_dense() if is_sparse_csr(x) else x


def library_size(x: Tensor) -> Tensor:
    """Total count of each cell (row) of ``x``, shape ``(..., cells, 1)``."""
    if not is_sparse_csr(x):
        return x.sum(-1, keepdim=True)
    # A segmented sum over each row's stored entries: deterministic on a GPU as well.
    return torch.segment_reduce(x.values(), "sum", offsets=x.crow_indices()).unsqueeze(1)


def csr_row_indices(crow: Tensor, n_entries: int) -> Tensor:
    """Row index (int64) of each of the ``n_entries`` stored entries of a CSR matrix with row
    pointers ``crow``."""
    rows = torch.arange(len(crow) - 1, device=crow.device)
    return torch.repeat_interleave(rows, crow.diff(), output_size=n_entries)


def csr_tensor(matrix: sp.csr_matrix | sp.csr_array) -> Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor sharing its memory."""
    crow, col = torch.from_numpy(matrix.indptr), torch.from_numpy(matrix.indices)
    if crow.dtype != col.dtype:  # torch wants one index type
        crow, col = crow.long(), col.long()
    return csr_from_arrays(crow, col, torch.from_numpy(matrix.data), matrix.shape)


def csr_from_arrays(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """A torch sparse CSR tensor from its arrays (trusted, so not checked)."""
    with warnings.catch_warnings():  # torch's one-off "sparse CSR support is in beta" notice
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)
