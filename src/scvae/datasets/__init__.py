"""Data sets: synthetic counts with planted structure (and, in time, bundled real data)."""

from ._paul15 import paul15
from ._synthetic import synthetic_counts

__all__ = ["paul15", "synthetic_counts"]
