"""Checks of integer arguments, shared by every package (torch-free)."""

import numpy as np


def whole_number(value, minimum: int) -> int | None:
    """``value`` as an ``int`` if it is a whole number of at least ``minimum`` (``10``,
    ``np.int64(10)`` or ``10.0``, not ``True``, ``"10"`` or NaN), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    try:
        return int(value) if value == int(value) and value >= minimum else None
    except (OverflowError, ValueError):  # infinite or NaN
        return None


def integer_at_least(value, minimum: int) -> bool:
    """Whether ``value`` is an integer (Python or NumPy, not a float or ``True``) of at least
    ``minimum``."""
    return not isinstance(value, bool) and isinstance(value, int | np.integer) and value >= minimum
