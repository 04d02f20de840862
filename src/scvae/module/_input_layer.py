"""The encoders' input layer: a linear map of a count matrix that may be sparse."""

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn
from torch.nn.functional import embedding_bag

from scvae._counts import csr_row_indices, is_sparse_csr


class CountInputLinear(nn.Module):
    """``x @ weight + bias`` for a ``(cells, genes)`` input, dense or torch sparse CSR.

    Single-cell count matrices are 90-98% zeros. Given a sparse CSR minibatch (see
    :class:`~scvae.data.TensorDataLoader`), the product and its weight gradient cost one
    row of ``weight`` per non-zero count instead of a dense matrix product over every gene,
    with the same result up to float rounding. A dense input (with any leading dimensions)
    takes the dense product.

    The weight is stored as ``(n_input, n_output)``, the transpose of
    :class:`~torch.nn.Linear`'s, so that each gene's row is contiguous; it is initialised as
    :class:`~torch.nn.Linear` would be.

    Parameters
    ----------
    n_input
        Width of the input (number of genes).
    n_output
        Width of the output.
    """

    #: State-dict version: 2 stores ``weight`` as (n_input, n_output); models saved when this
    #: layer was a :class:`~torch.nn.Linear` (version 1) hold its transpose.
    _version = 2

    def __init__(self, n_input: int, n_output: int):
        super().__init__()
        linear = nn.Linear(n_input, n_output)
        self.weight = nn.Parameter(linear.weight.detach().t().contiguous())
        self.bias = nn.Parameter(linear.bias.detach().clone())

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        """Also load the weight of a model saved when this layer was a ``torch.nn.Linear``.

        Such a state dict says version 1 in its metadata. Without metadata, the stored
        weight's shape tells the layouts apart unless the layer is square; that case is read
        as the current layout.
        """
        key = prefix + "weight"
        weight = state_dict.get(key)
        if weight is not None and weight.dim() == 2:
            version = local_metadata.get("version")
            transposed = weight.shape == self.weight.shape[::-1]
            square = weight.shape[0] == weight.shape[1]
            if version == 1 or (version is None and transposed and not square):
                state_dict[key] = weight.t()
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` (``(..., n_input)``, or a sparse CSR ``(cells, n_input)``) to ``n_output``."""
        if is_sparse_csr(x):
            values = x.values().to(self.weight.dtype)
            return _SparseRowsProduct.apply(
                x.crow_indices(), x.col_indices(), values, self.weight, self.bias
            )
        if x.dim() == 2:
            return torch.addmm(self.bias, x, self.weight)
        return torch.matmul(x, self.weight) + self.bias


class _SparseRowsProduct(torch.autograd.Function):
    r"""``X @ W + b`` for a sparse CSR ``X`` given as ``(crow, col, values)``.

    Row :math:`i` of the product is :math:`\sum_j x_{ij} W_j` over the non-zero
    :math:`x_{ij}`: a weighted sum of rows of :math:`W`, which ``embedding_bag`` computes
    without densifying :math:`X`. The weight gradient :math:`X^\top G` is the same sum over the
    columns of :math:`X` (row :math:`j` is :math:`\sum_i x_{ij} G_i`), so it is computed the same
    way on the transposed (CSC) ordering of the non-zeros.
    """

    @staticmethod
    def forward(ctx, crow: Tensor, col: Tensor, values: Tensor, weight: Tensor, bias: Tensor):
        ctx.save_for_backward(crow, col, values)
        ctx.n_input = weight.shape[0]
        out = embedding_bag(
            col, weight, crow, mode="sum", per_sample_weights=values, include_last_offset=True
        )
        return out.add_(bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        crow, col, values = ctx.saved_tensors
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[3]:
            col_ptr, row, values_by_col = transpose_csr(crow, col, values, ctx.n_input)
            grad_weight = embedding_bag(
                row,
                grad.contiguous(),
                col_ptr,
                mode="sum",
                per_sample_weights=values_by_col,
                include_last_offset=True,
            )
        if ctx.needs_input_grad[4]:
            grad_bias = grad.sum(0)
        return None, None, None, grad_weight, grad_bias


def transpose_csr(
    crow: Tensor, col: Tensor, values: Tensor, n_cols: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The CSC form ``(col_ptr, row, values)`` of the CSR matrix ``(crow, col, values)``.

    Index tensors come back with one integer type, as ``embedding_bag`` wants them. On a CPU
    scipy's conversion (a counting sort) is used, several times faster than torch's; on other
    devices a stable sort of the column indices.
    """
    if crow.device.type != "cpu":
        return _transpose_csr_torch(crow, col, values, n_cols)
    csr = sp.csr_matrix(
        (values.numpy(), col.numpy(), crow.numpy()), shape=(len(crow) - 1, n_cols), copy=False
    )
    csc = csr.tocsc()
    index_dtype = np.result_type(csc.indptr, csc.indices)
    return (
        torch.from_numpy(csc.indptr.astype(index_dtype, copy=False)),
        torch.from_numpy(csc.indices.astype(index_dtype, copy=False)),
        torch.from_numpy(csc.data),
    )


def _transpose_csr_torch(
    crow: Tensor, col: Tensor, values: Tensor, n_cols: int
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`transpose_csr` with torch operations only (any device)."""
    col = col.long()
    row = csr_row_indices(crow, len(col))
    order = torch.argsort(col, stable=True)
    col_ptr = torch.zeros(n_cols + 1, dtype=torch.long, device=col.device)
    col_ptr[1:] = torch.bincount(col, minlength=n_cols).cumsum(0)
    return col_ptr, row[order], values[order]
