"""Checks of integer and true-or-false arguments, shared by every package (torch-free)."""

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


def is_real(value) -> bool:
    """Whether ``value`` is a real number (Python or NumPy; not ``True``/``False`` or a
    string)."""
    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)


def check_flag(value, name: str, *, none: bool = False) -> None:
    """Refuse ``value`` for the option ``name`` unless it is ``True`` or ``False`` (or
    ``None`` where ``none``): a string such as ``"False"`` would otherwise count as true."""
    if isinstance(value, bool | np.bool_) or (none and value is None):
        return
    allowed = "True, False or None" if none else "True or False"
    raise TypeError(f"{name} must be {allowed}, got {value!r}.")
