"""Argument checks shared by every config: one clear error naming the field and its range."""

from __future__ import annotations

import math
import numbers
from datetime import datetime


def check_number(
    name: str,
    value: object,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
) -> None:
    """Raise if ``value`` is not a finite number inside the range.

    Raises:
        TypeError: ``value`` is not a real number (``bool`` is refused too), or not an
            integer when ``integer`` is set.
        ValueError: ``value`` is NaN, infinite or outside ``[lo, hi]`` (open ends as given).
    """
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    if integer and not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    low_ok = lo is None or (value > lo if lo_open else value >= lo)
    high_ok = hi is None or (value < hi if hi_open else value <= hi)
    if not (low_ok and high_ok):
        raise ValueError(f"{name} must be {describe_range(lo, hi, lo_open, hi_open)}, got {value!r}")


def describe_range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    """Human form of a range: ``> 0``, ``in [0, 1]``, ``<= 5``."""
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return "finite"


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_utc(name: str, value: object) -> None:
    """Raise unless ``value`` is a timezone-aware ``datetime``."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. tzinfo=timezone.utc), got {value!r}")
