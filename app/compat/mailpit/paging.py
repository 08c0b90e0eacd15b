"""Mailpit's ``start``/``limit`` query parameters, read leniently like Mailpit does
(a value that is not a number falls back to the default)."""

from __future__ import annotations

DEFAULT_LIMIT = 50
MAX_LIMIT = 10_000


def start_limit(start: str | None, limit: str | None) -> tuple[int, int]:
    return _number(start, 0, 0, None), _number(limit, DEFAULT_LIMIT, 1, MAX_LIMIT)


def _number(value: str | None, default: int, low: int, high: int | None) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    if number < low:
        return default
    return min(number, high) if high is not None else number
