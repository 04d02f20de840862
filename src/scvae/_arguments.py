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


def check_flag(value, name: str) -> None:
    """Refuse ``value`` for the option ``name`` unless it reads unambiguously as true or false:
    ``True``, ``False``, ``None``, ``0`` or ``1`` (NumPy's too). A string such as ``"False"``
    would otherwise count as true."""
    if value is None or isinstance(value, bool | np.bool_):
        return
    if isinstance(value, int | np.integer) and value in (0, 1):
        return
    raise TypeError(f"{name} must be True or False, got {value!r}.")
