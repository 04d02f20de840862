"""Decoder outputs for a likelihood's parameters besides the mean (see ``distributions``'s table).

Each head maps the decoder's last hidden layer ``h`` and the cells' batch codes to one
parameter of shape broadcastable to ``(..., cells, genes)``.
"""

import torch
from torch import nn

#: The models' ``dispersion`` option: how a ``"dispersion"`` parameter varies.
DISPERSIONS: tuple[str, ...] = ("gene", "gene-batch", "gene-cell")


class GeneParameter(nn.Module):
    """One free value per gene (e.g. scVI's ``dispersion="gene"``), initialised ``N(0, 1)``."""

    def __init__(self, n_genes: int):
        super().__init__()
        self.value = nn.Parameter(torch.randn(n_genes))

    def forward(self, h: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        """The per-gene values, shape ``(genes,)``."""
        return self.value


class GeneBatchParameter(nn.Module):
    """One free value per gene and batch, initialised ``N(0, 1)``."""

    def __init__(self, n_batch: int, n_genes: int):
        super().__init__()
        self.value = nn.Parameter(torch.randn(n_batch, n_genes))

    def forward(self, h: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        """Each cell's batch row, shape ``(cells, genes)``."""
        return self.value[batch_index]


class CellParameter(nn.Linear):
    """One value per cell and gene: a linear map of the decoder's last hidden layer."""

    def forward(self, h: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        """``h @ weight.T + bias``, shape ``(..., cells, genes)``."""
        return super().forward(h)


def parameter_head(kind: str, dispersion: str, n_hidden: int, n_genes: int, n_batch: int):
    """The head of a parameter of kind ``kind`` (``"dispersion"``, ``"cell"`` or ``"gene"``).

    A ``"dispersion"`` parameter is per gene, per gene and batch, or per cell and gene as
    ``dispersion`` (``"gene"``, ``"gene-batch"``, ``"gene-cell"``) says.
    """
    if kind == "dispersion":
        kind = {"gene": "gene", "gene-batch": "gene-batch", "gene-cell": "cell"}[dispersion]
    if kind == "gene":
        return GeneParameter(n_genes)
    if kind == "gene-batch":
        return GeneBatchParameter(n_batch, n_genes)
    return CellParameter(n_hidden, n_genes)
