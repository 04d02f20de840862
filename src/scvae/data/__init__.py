"""Registering and checking AnnData count matrices."""

from ._setup import setup_anndata
from ._validation import InvalidCountsError, validate_counts

__all__ = ["InvalidCountsError", "setup_anndata", "validate_counts"]
