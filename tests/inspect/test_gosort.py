"""Go's sort.Slice order, including the orders it gives to ties and to non-strict comparisons."""

from __future__ import annotations

import json
import random

import pytest
from inspect_support import data

from meshctl.inspect.gosort import sort_slice
from meshctl.inspect.gostd import atoi, equal_fold


def _go_remainder(value: int, modulus: int) -> int:
    remainder = abs(value) % modulus
    return -remainder if value < 0 else remainder


def _less(vector: dict) -> object:
    ints, strs = vector["ints"], vector.get("strs", [])
    if vector["less"] == "lt":
        return lambda i, j: ints[i] < ints[j]
    if vector["less"] == "gt":
        return lambda i, j: ints[i] > ints[j]
    if vector["less"] == "weird":
        # Not an ordering at all: only the exact sequence of Less and Swap calls gives Go's result.
        return lambda i, j: _go_remainder(ints[i] * 31 + ints[j] * 17, 7) < 3

    def numeric_names(i: int, j: int) -> bool:
        left, left_ok = atoi(strs[i])
        if not left_ok:
            return False
        right, right_ok = atoi(strs[j])
        return right_ok and left < right

    return numeric_names


def test_vectors_from_go() -> None:
    """90 slices up to 260 long (random, sorted, reversed, few distinct values) sorted by Go."""
    for vector in json.loads(data("go_vectors.json"))["sort_slice"]:
        indexes = list(range(len(vector["ints"])))
        sort_slice(indexes, _less(vector))
        assert indexes == vector["want"], vector


def test_small_slices_use_insertion_sort() -> None:
    # Up to 12 items Go uses insertion sort, which never moves an item past an equal one,
    # and with "not less" answers for non-numbers it leaves them where they are.
    names = ["9080", "outbound-gw", "15010", "80", "inbound|9080||", "8080", ""]

    def less(left: str, right: str) -> bool:
        a, ok = atoi(left)
        b, ok2 = atoi(right)
        return ok and ok2 and a < b

    sort_slice(names, less)
    assert names == ["9080", "outbound-gw", "80", "15010", "inbound|9080||", "8080", ""]


@pytest.mark.parametrize("size", [0, 1, 13, 50, 51, 300, 2000])
def test_sorts_strict_orders(size: int) -> None:
    rng = random.Random(size)
    values = [rng.randint(0, size // 3 + 1) for _ in range(size)]
    sort_slice(values, lambda a, b: a < b)
    assert values == sorted(values)


def test_heapsort_fallback_still_sorts() -> None:
    # A comparator that makes every pivot a bad one exhausts the pattern-breaking budget.
    values = list(range(500, 0, -1)) + list(range(500))
    sort_slice(values, lambda a, b: a < b)
    assert values == sorted(values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80", (80, True)),
        ("+80", (80, True)),
        ("-0", (0, True)),
        ("", (0, False)),
        ("-", (0, False)),
        (" 1", (0, False)),
        ("1_000", (0, False)),
        ("٣", (0, False)),
        ("http", (0, False)),
        ("9223372036854775807", (9223372036854775807, True)),
        ("9223372036854775808", (9223372036854775807, False)),
        ("-9223372036854775809", (-9223372036854775808, False)),
    ],
)
def test_atoi_is_go_strconv(text: str, expected: tuple[int, bool]) -> None:
    assert atoi(text) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("HTTP", "http", True),
        ("Http+Tcp", "HTTP+TCP", True),
        ("K", "\u212a", True),
        ("ß", "SS", False),
        ("a", "ab", False),
    ],
)
def test_equal_fold_is_simple_folding(left: str, right: str, expected: bool) -> None:
    assert equal_fold(left, right) is expected
