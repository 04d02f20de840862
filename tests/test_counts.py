"""Minibatch count helpers agree between sparse CSR and dense counts."""

import numpy as np
import scipy.sparse as sp
import torch

from scvae._counts import csr_row_indices, csr_tensor, dense_counts, is_sparse_csr, library_size


def test_sparse_and_dense_counts_agree():
    dense = np.array([[0, 3, 0, 1], [0, 0, 0, 0], [5, 0, 2, 0]], dtype=np.float32)
    matrix = sp.csr_matrix(dense)
    x = csr_tensor(matrix)
    assert is_sparse_csr(x) and not is_sparse_csr(dense_counts(x))
    np.testing.assert_array_equal(dense_counts(x).numpy(), dense)
    plain = torch.as_tensor(dense)
    assert dense_counts(plain) is plain
    np.testing.assert_array_equal(library_size(x).numpy(), [[4], [0], [7]])
    np.testing.assert_array_equal(library_size(torch.as_tensor(dense)).numpy(), [[4], [0], [7]])
    rows = csr_row_indices(x.crow_indices(), x.values().numel())
    np.testing.assert_array_equal(rows.numpy(), [0, 0, 2, 2])
    assert rows.dtype == torch.int64


def test_csr_tensor_shares_the_scipy_arrays_and_unifies_index_types():
    matrix = sp.csr_matrix(np.eye(3, dtype=np.float32))
    x = csr_tensor(matrix)
    matrix.data[1] = 9.0
    assert x.values()[1] == 9.0  # no copy
    matrix.indptr = matrix.indptr.astype(np.int64)  # indices stay int32
    x = csr_tensor(matrix)
    assert x.crow_indices().dtype == x.col_indices().dtype == torch.int64
    np.testing.assert_array_equal(x.to_dense().numpy(), matrix.toarray())
