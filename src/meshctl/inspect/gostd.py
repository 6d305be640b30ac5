"""The two Go standard library functions whose exact behaviour istioctl's tables depend on.

`strconv.Atoi`: Python's `int()` accepts spaces, underscores and non-ASCII digits; Go's Atoi
accepts only an optional sign and ASCII digits, and on overflow returns the clamped value *and*
an error. Route names sort as integers only when Atoi succeeds on both, and cluster ports keep
the clamped value.

`strings.EqualFold`: the address, type, cluster and status filters compare case-insensitively
with Unicode simple case folding, which is not Python's `casefold()` (that maps "ß" to "ss").
"""

from __future__ import annotations

__all__ = ["atoi", "equal_fold"]

_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)


def atoi(text: str) -> tuple[int, bool]:
    """Return (value, ok) as Go's `strconv.Atoi` returns (value, err == nil) on 64-bit."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or any(not "0" <= char <= "9" for char in digits):
        return 0, False
    value = int(digits)
    if text[0] == "-":
        value = -value
    if value > _INT64_MAX:
        return _INT64_MAX, False
    if value < _INT64_MIN:
        return _INT64_MIN, False
    return value, True


def equal_fold(left: str, right: str) -> bool:
    """Go's `strings.EqualFold`: equal under simple (one-to-one) Unicode case folding."""
    if len(left) != len(right):
        return False
    return all(a == b or _fold(a) == _fold(b) for a, b in zip(left, right, strict=True))


def _fold(char: str) -> str:
    """The smallest member of the character's simple case-folding orbit that maps one to one."""
    candidates = {char}
    for mapped in (char.lower(), char.upper(), char.lower().upper(), char.upper().lower()):
        if len(mapped) == 1:
            candidates.add(mapped)
    return min(candidates)
