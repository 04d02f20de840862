"""Fully connected building blocks shared by the encoders and decoders."""

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from scvae._arguments import integer_at_least

from ._input_layer import CountInputLinear

#: Where hidden layers are batch-normalised: scvi-tools' values of ``use_batch_norm``.
BATCH_NORM_PLACES: tuple[str, ...] = ("none", "encoder", "decoder", "both")


class MLP(nn.Module):
    """Multilayer perceptron with batch covariates injected into every hidden layer.

    Each hidden layer is ``Linear -> (+ covariate embedding) -> BatchNorm -> ReLU -> Dropout``.
    Adding a learned embedding of a categorical covariate is the same as concatenating its
    one-hot code to the layer input, but costs no matrix product. Inputs may carry extra
    leading dimensions (Monte Carlo samples, mixture components): batch norm statistics are
    then taken over all of them together.

    Parameters
    ----------
    n_input
        Width of the input.
    n_hidden
        Width of each hidden layer, first to last (e.g. ``[1000, 500, 250, 100]``).
    n_categories
        Number of categories of each categorical covariate injected into every layer. A
        covariate with one category carries no information and is skipped.
    use_batch_norm
        Whether to normalise each hidden layer with :class:`~torch.nn.BatchNorm1d`.
    dropout_rate
        Dropout probability after each hidden layer.
    count_input
        The input is a count matrix, dense or torch sparse CSR: the first layer is a
        :class:`~scvae.module.CountInputLinear`, which multiplies only the non-zero entries
        of a sparse input.
    """

    def __init__(
        self,
        n_input: int,
        n_hidden: Sequence[int],
        n_categories: Sequence[int] = (),
        use_batch_norm: bool = True,
        dropout_rate: float = 0.1,
        count_input: bool = False,
    ):
        super().__init__()
        widths = [n_input, *n_hidden]
        self.linears = nn.ModuleList(
            CountInputLinear(n_in, n_out) if i == 0 and count_input else nn.Linear(n_in, n_out)
            for i, (n_in, n_out) in enumerate(itertools.pairwise(widths))
        )
        self.covariate_indices = [i for i, n in enumerate(n_categories) if n > 1]
        self.embeddings = nn.ModuleList(
            nn.ModuleList(nn.Embedding(n_categories[i], width) for i in self.covariate_indices)
            for width in n_hidden
        )
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(width, momentum=0.01, eps=1e-3) if use_batch_norm else nn.Identity()
            for width in n_hidden
        )
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.n_output = widths[-1]

    def forward(
        self,
        x: torch.Tensor,
        categories: Sequence[torch.Tensor] = (),
        first_layer_offset: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Map ``x`` (``(..., n_input)``) to the last hidden layer (``(..., n_hidden[-1])``).

        Parameters
        ----------
        x
            Input features; with ``count_input``, a ``(cells, n_input)`` matrix may also be
            a torch sparse CSR tensor.
        categories
            One integer tensor of shape ``(cells,)`` per covariate given in ``n_categories``.
        first_layer_offset
            Added to the first layer's pre-activation; broadcasts against it. The GMVAE uses
            it to condition on the mixture component without repeating ``x`` K times.
        """
        h = x
        for i, (linear, embeddings, norm) in enumerate(
            zip(self.linears, self.embeddings, self.norms, strict=True)
        ):
            h = linear(h)
            if i == 0 and first_layer_offset is not None:
                h = h + first_layer_offset
            for embedding, j in zip(embeddings, self.covariate_indices, strict=True):
                h = h + embedding(categories[j])
            h = self.dropout(torch.relu(_batch_norm(norm, h)))
        return h


def cluster_classifier(
    n_input: int,
    n_hidden: Sequence[int],
    n_categories: Sequence[int],
    use_batch_norm: bool,
    dropout_rate: float,
    n_components: int,
) -> tuple[MLP, nn.Linear]:
    r"""The networks of a classifier q(y | x) on the counts: an :class:`MLP` (to be given
    :math:`\log(1 + x)`) and the linear map from its last hidden layer to the K logits."""
    encoder = MLP(n_input, n_hidden, n_categories, use_batch_norm, dropout_rate, count_input=True)
    return encoder, nn.Linear(encoder.n_output, n_components)


def _batch_norm(norm: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Apply a 1d batch norm to a tensor with any number of leading dimensions."""
    if h.dim() == 2 or isinstance(norm, nn.Identity):
        return norm(h)
    return norm(h.reshape(-1, h.shape[-1])).reshape(h.shape)


def batch_norm_places(use_batch_norm: bool | str) -> tuple[bool, bool]:
    """Whether the encoders and whether the decoder batch-normalise their hidden layers.

    ``use_batch_norm`` is one of :data:`BATCH_NORM_PLACES`, or a bool (``True`` is
    ``"both"``, ``False`` is ``"none"``, as models saved before the places existed hold it).
    """
    if isinstance(use_batch_norm, bool | np.bool_):
        use_batch_norm = "both" if use_batch_norm else "none"
    if use_batch_norm not in BATCH_NORM_PLACES:
        raise ValueError(
            f"use_batch_norm={use_batch_norm!r} is not one of {BATCH_NORM_PLACES} (or a bool)."
        )
    return use_batch_norm in ("encoder", "both"), use_batch_norm in ("decoder", "both")


def hidden_widths(n_hidden: int | Sequence[int], n_layers: int) -> list[int]:
    """Resolve the ``n_hidden``/``n_layers`` pair into a list of hidden layer widths.

    ``n_hidden`` may be one width repeated ``n_layers`` times (scvi-tools style) or the list of
    widths itself (scVAE style), in which case ``n_layers`` must be 1 or its length.
    """
    if not integer_at_least(n_layers, 1):
        raise ValueError(f"n_layers must be a positive integer, got {n_layers!r}.")
    scalar = isinstance(n_hidden, str) or not isinstance(n_hidden, Iterable)
    given = [n_hidden] * int(n_layers) if scalar else list(n_hidden)
    widths = [int(width) if integer_at_least(width, 1) else None for width in given]
    if not widths or None in widths:
        raise ValueError(
            f"n_hidden must be a positive integer or a list of them (the widths of the hidden "
            f"layers), got {n_hidden!r}."
        )
    if not scalar and n_layers not in (1, len(widths)):
        raise ValueError(
            f"n_layers={n_layers} contradicts n_hidden={list(n_hidden)}: give the list of "
            "layer widths alone (n_layers is then its length)."
        )
    return widths
