"""Data sets: synthetic counts with planted structure (and, in time, bundled real data)."""

from ._synthetic import synthetic_counts

__all__ = ["synthetic_counts"]
