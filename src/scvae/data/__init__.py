"""Registering and checking AnnData count matrices."""

from ._loader import BlockShuffleSampler, RegisteredTensors, TensorDataLoader, TensorDataSplitter
from ._setup import setup_anndata
from ._validation import InvalidCountsError, validate_counts

__all__ = [
    "BlockShuffleSampler",
    "InvalidCountsError",
    "RegisteredTensors",
    "TensorDataLoader",
    "TensorDataSplitter",
    "setup_anndata",
    "validate_counts",
]
