"""The encoders' input layer gives the same values and gradients for sparse and dense counts."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from scvae._counts import csr_tensor
from scvae.module import CountInputLinear
from scvae.module._input_layer import _transpose_csr_torch, transpose_csr


def _counts(n_cells=7, n_genes=11, seed=0, dtype=np.float32) -> sp.csr_matrix:
    """Sparse counts with an empty cell, an empty gene and an explicitly stored zero."""
    rng = np.random.default_rng(seed)
    dense = rng.poisson(0.4, (n_cells, n_genes)).astype(dtype)
    dense[2] = 0
    dense[:, 4] = 0
    matrix = sp.csr_matrix(dense)
    matrix.indices = matrix.indices.astype(np.int64)
    matrix.indptr = matrix.indptr.astype(np.int64)
    matrix.data[0] = 0.0  # stored, yet zero
    return matrix


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_input_gives_the_dense_values_and_gradients(dtype, index_dtype):
    torch.manual_seed(0)
    layer = CountInputLinear(11, 5).to(dtype)
    counts = _counts()
    counts.indices, counts.indptr = (a.astype(index_dtype) for a in (counts.indices, counts.indptr))
    sparse = torch.log1p(csr_tensor(counts))
    dense = sparse.to_dense().to(dtype)
    grad_out = torch.randn(7, 5, dtype=dtype)
    grads = []
    for x in (sparse, dense):
        out = layer(x)
        assert out.dtype == dtype
        grads.append((out, *torch.autograd.grad((out * grad_out).sum(), layer.parameters())))
    for sparse_result, dense_result in zip(*grads, strict=True):
        torch.testing.assert_close(sparse_result, dense_result)


def test_dense_input_with_leading_dimensions_and_linear_initialisation():
    torch.manual_seed(0)
    layer = CountInputLinear(11, 5)
    torch.manual_seed(0)
    linear = torch.nn.Linear(11, 5)
    torch.testing.assert_close(layer.weight, linear.weight.T)  # same draws, transposed
    x = torch.randn(3, 7, 11)
    torch.testing.assert_close(layer(x), linear(x))


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_transposed_csr_is_the_csc_form(index_dtype):
    counts = _counts()
    counts.indices, counts.indptr = (a.astype(index_dtype) for a in (counts.indices, counts.indptr))
    csc = counts.tocsc()
    x = csr_tensor(counts)
    arrays = (x.crow_indices(), x.col_indices(), x.values(), counts.shape[1])
    for col_ptr, row, values in (transpose_csr(*arrays), _transpose_csr_torch(*arrays)):
        assert col_ptr.dtype == row.dtype
        np.testing.assert_array_equal(col_ptr.numpy(), csc.indptr)
        # Within a column, rows may come in any order: compare the densified matrices.
        rebuilt = sp.csc_matrix((values.numpy(), row.numpy(), col_ptr.numpy()), counts.shape)
        np.testing.assert_array_equal(rebuilt.toarray(), counts.toarray())


@pytest.mark.parametrize("with_metadata", [True, False])
def test_models_saved_with_a_linear_input_layer_still_load(with_metadata):
    """A state dict from when the encoders' first layer was a torch.nn.Linear (transposed)."""
    from collections import OrderedDict

    from scvae.module import VAEModule

    torch.manual_seed(0)
    saved = VAEModule(n_input=11, n_latent=2, n_hidden=[5])
    old = OrderedDict(
        (k, v.t() if k == "encoder.network.linears.0.weight" else v)
        for k, v in saved.state_dict().items()
    )
    if with_metadata:
        old._metadata = saved.state_dict()._metadata
        old._metadata["encoder.network.linears.0"] = {"version": 1}
    loaded = VAEModule(n_input=11, n_latent=2, n_hidden=[5])
    loaded.load_state_dict(old)
    for key, value in saved.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, msg=key)
    loaded.load_state_dict(saved.state_dict())  # the current layout loads as it is
    torch.testing.assert_close(
        loaded.encoder.network.linears[0].weight, saved.encoder.network.linears[0].weight
    )
