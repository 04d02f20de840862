"""Data sets: synthetic counts with planted structure, and the bundled paul15 counts."""

from ._paul15 import paul15
from ._synthetic import synthetic_counts

__all__ = ["paul15", "synthetic_counts"]
