"""The shared argument validators: what passes, what fails and what the error says."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench._checks import INCLUSIVE, check_choice, check_int, check_real, short_repr

bounds = st.one_of(st.none(), st.integers(-1000, 1000))
numpy_ints = st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16])


@given(value=st.integers(-10**6, 10**6), minimum=bounds, maximum=bounds)
def test_check_int_agrees_with_the_bounds(value: int, minimum: int | None,
                                          maximum: int | None) -> None:
    inside = (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if inside:
        out = check_int("n", value, minimum=minimum, maximum=maximum)
        assert out == value and type(out) is int
    else:
        with pytest.raises(ValueError, match=f"^n must be an int.*got {value}$") as err:
            check_int("n", value, minimum=minimum, maximum=maximum)
        for bound in (minimum, maximum):
            if bound is not None:
                assert str(bound) in str(err.value)


@given(value=st.integers(0, 100), dtype=numpy_ints)
def test_check_int_accepts_numpy_integers(value: int, dtype: type) -> None:
    out = check_int("n", dtype(value), minimum=0)
    assert out == value and type(out) is int


@given(value=st.one_of(st.booleans(), st.floats(), st.text(max_size=5),
                       st.sampled_from([np.bool_(True), np.float64(2.0), [1], (1,)])))
def test_check_int_rejects_non_ints(value: object) -> None:
    with pytest.raises(ValueError, match=r"^k must be an int"):
        check_int("k", value)


def test_check_int_wording_and_none() -> None:
    assert check_int("n", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"^n must be an int >= 1, got 0$"):
        check_int("n", 0, minimum=1)
    with pytest.raises(ValueError, match=r"^n must be an int <= 3, got 4$"):
        check_int("n", 4, maximum=3)
    with pytest.raises(ValueError, match=r"^n must be an int in \[1, 3\], got 4$"):
        check_int("n", 4, minimum=1, maximum=3)
    with pytest.raises(ValueError, match=r"^n must be None or an int >= 1, got 0$"):
        check_int("n", 0, minimum=1, allow_none=True)
    with pytest.raises(ValueError, match=r"^n must be an int, got None$"):
        check_int("n", None)
    with pytest.raises(ValueError, match=r"got True$"):
        check_int("n", True)


def _inside(x: float, lo: float | None, hi: float | None, inclusive: str) -> bool:
    closed_lo, closed_hi = inclusive in ("both", "left"), inclusive in ("both", "right")
    ok = lo is None or (x >= lo if closed_lo else x > lo)
    return ok and (hi is None or (x <= hi if closed_hi else x < hi))


@given(value=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-50, 50)),
       minimum=st.one_of(st.none(), st.floats(-100, 100)),
       maximum=st.one_of(st.none(), st.floats(-100, 100)),
       inclusive=st.sampled_from(INCLUSIVE))
def test_check_real_agrees_with_the_bounds(value: float, minimum: float | None,
                                           maximum: float | None, inclusive: str) -> None:
    if _inside(float(value), minimum, maximum, inclusive):
        out = check_real("x", value, minimum=minimum, maximum=maximum, inclusive=inclusive)
        assert out == value and type(out) is float
    else:
        with pytest.raises(ValueError, match=r"^x must be a finite number") as err:
            check_real("x", value, minimum=minimum, maximum=maximum, inclusive=inclusive)
        assert str(err.value).endswith(f"got {value!r}")


@given(value=st.sampled_from([math.inf, -math.inf, math.nan, np.float32("nan")]))
def test_check_real_finite(value: float) -> None:
    with pytest.raises(ValueError, match=r"^x must be a finite number, got"):
        check_real("x", value)
    out = check_real("x", value, finite=False)
    assert out == value or (math.isnan(out) and math.isnan(value))
    with pytest.raises(ValueError, match=r"^x must be a number >= 0"):
        if math.isnan(value) or value < 0:
            check_real("x", value, minimum=0, finite=False)
        else:
            check_real("x", -1, minimum=0, finite=False)


@given(value=st.one_of(st.booleans(), st.text(max_size=5), st.none(),
                       st.sampled_from([np.bool_(False), [1.0], "1.0"])))
def test_check_real_rejects_non_numbers(value: object) -> None:
    with pytest.raises(ValueError, match=r"^x must be a finite number"):
        check_real("x", value)


def test_check_real_wording() -> None:
    assert check_real("x", np.float32(0.5), minimum=0, maximum=1) == 0.5
    assert check_real("x", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"^lr must be a finite number > 0, got 0$"):
        check_real("lr", 0, minimum=0, inclusive="neither")
    with pytest.raises(ValueError, match=r"^p must be a finite number in \[0, 1\), got 1.0$"):
        check_real("p", 1.0, minimum=0, maximum=1, inclusive="left")
    with pytest.raises(ValueError, match=r"^p must be a finite number in \(0, 1\], got 0$"):
        check_real("p", 0, minimum=0, maximum=1, inclusive="right")
    with pytest.raises(ValueError, match=r"^p must be None or a finite number <= 1, got 2$"):
        check_real("p", 2, maximum=1, allow_none=True)
    with pytest.raises(ValueError, match=r"^inclusive must be one of"):
        check_real("p", 0.5, inclusive="open")  # type: ignore[arg-type]


@given(allowed=st.lists(st.text(max_size=4), min_size=1, max_size=5, unique=True),
       value=st.text(max_size=4))
def test_check_choice(allowed: list[str], value: str) -> None:
    if value in allowed:
        assert check_choice("how", value, allowed) == value
    else:
        with pytest.raises(ValueError, match=r"^how must be one of") as err:
            check_choice("how", value, allowed)
        assert repr(tuple(allowed)) in str(err.value)
        assert str(err.value).endswith(f"got {value!r}")


def test_check_choice_is_strict_about_bools_and_odd_values() -> None:
    assert check_choice("k", 1, (1, 2)) == 1
    with pytest.raises(ValueError, match=r"^k must be one of \(1, 2\), got True$"):
        check_choice("k", True, (1, 2))
    with pytest.raises(ValueError, match="got array"):
        check_choice("k", np.arange(3), ("a", "b"))
    with pytest.raises(ValueError, match=r"got \[1\]"):
        check_choice("k", [1], {"a"})


def test_long_values_are_cut() -> None:
    assert len(short_repr("x" * 500)) == 80
    with pytest.raises(ValueError, match=r"\.\.\.$"):
        check_int("n", "x" * 500)
