"""Argument validators shared by every layer (ints, reals, choices), so that one rule and one
wording hold everywhere: each ValueError names the argument, the bad value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal, TypeVar, overload

import numpy as np

T = TypeVar("T")

#: ``check_real(inclusive=...)``: which bounds are allowed values (pandas ``between`` convention).
INCLUSIVE = ("both", "left", "right", "neither")
Inclusive = Literal["both", "left", "right", "neither"]


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that error messages stay readable."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_int(value: Any) -> bool:
    """True for Python and numpy integers, False for booleans (which would pass as 0/1)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """True for Python and numpy ints and floats (NaN and infinities included), False for bools."""
    return is_int(value) or (isinstance(value, (float, np.floating)))


def _with_none(rule: str, allow_none: bool) -> str:
    return f"None or {rule}" if allow_none else rule


@overload
def check_int(name: str, value: Any, *, minimum: int | None = ..., maximum: int | None = ...,
              allow_none: Literal[False] = ...) -> int: ...


@overload
def check_int(name: str, value: Any, *, minimum: int | None = ..., maximum: int | None = ...,
              allow_none: bool) -> int | None: ...


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
              allow_none: bool = False) -> int | None:
    """``value`` as a Python int in ``[minimum, maximum]`` (None when ``allow_none``).

    numpy integers pass; booleans, floats (even ``2.0``) and strings do not.
    """
    if value is None and allow_none:
        return None
    if (is_int(value) and (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)):
        return int(value)
    if minimum is not None and maximum is not None:
        rule = f"an int in [{minimum}, {maximum}]"
    elif minimum is not None:
        rule = f"an int >= {minimum}"
    elif maximum is not None:
        rule = f"an int <= {maximum}"
    else:
        rule = "an int"
    raise ValueError(f"{name} must be {_with_none(rule, allow_none)}, got {short_repr(value)}")


@overload
def check_real(name: str, value: Any, *, minimum: float | None = ...,
               maximum: float | None = ..., inclusive: Inclusive = ..., finite: bool = ...,
               allow_none: Literal[False] = ...) -> float: ...


@overload
def check_real(name: str, value: Any, *, minimum: float | None = ...,
               maximum: float | None = ..., inclusive: Inclusive = ..., finite: bool = ...,
               allow_none: bool) -> float | None: ...


def check_real(name: str, value: Any, *, minimum: float | None = None,
               maximum: float | None = None, inclusive: Inclusive = "both", finite: bool = True,
               allow_none: bool = False) -> float | None:
    """``value`` as a float between ``minimum`` and ``maximum`` (None when ``allow_none``).

    ``inclusive`` says which bounds are allowed (``"both"``, ``"left"``, ``"right"``,
    ``"neither"``); ``finite=False`` also lets infinities and NaN through (NaN fails any bound).
    Python and numpy ints and floats pass; booleans and strings do not.
    """
    if inclusive not in INCLUSIVE:
        raise ValueError(f"inclusive must be one of {INCLUSIVE}, got {short_repr(inclusive)}")
    if value is None and allow_none:
        return None
    closed_lo, closed_hi = inclusive in ("both", "left"), inclusive in ("both", "right")
    if is_real(value):
        x = float(value)
        ok = (not finite or math.isfinite(x))
        if minimum is not None:
            ok = ok and (x >= minimum if closed_lo else x > minimum)
        if maximum is not None:
            ok = ok and (x <= maximum if closed_hi else x < maximum)
        if ok:
            return x
    kind = "a finite number" if finite else "a number"
    if minimum is not None and maximum is not None:
        rule = (f"{kind} in {'[' if closed_lo else '('}{minimum}, "
                f"{maximum}{']' if closed_hi else ')'}")
    elif minimum is not None:
        rule = f"{kind} {'>=' if closed_lo else '>'} {minimum}"
    elif maximum is not None:
        rule = f"{kind} {'<=' if closed_hi else '<'} {maximum}"
    else:
        rule = kind
    raise ValueError(f"{name} must be {_with_none(rule, allow_none)}, got {short_repr(value)}")


def check_choice(name: str, value: Any, allowed: Iterable[T]) -> T:
    """``value`` itself when it is one of ``allowed`` (compared with ``==``, type-strict for
    bools so that ``True`` is not taken for ``1``); ValueError listing ``allowed`` otherwise.
    """
    options = tuple(allowed)
    for option in options:
        same_kind = isinstance(value, (bool, np.bool_)) == isinstance(option, (bool, np.bool_))
        try:
            equal = bool(value == option)
        except (TypeError, ValueError):  # arrays and other values without a plain ==
            equal = False
        if same_kind and equal:
            return option
    raise ValueError(f"{name} must be one of {options!r}, got {short_repr(value)}")
