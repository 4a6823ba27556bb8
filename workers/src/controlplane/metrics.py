"""Counters for GET /metrics that no table holds otherwise (D1 `counters`)."""

from __future__ import annotations


async def count(d1, *names: str, by: float = 1) -> None:
    """Add `by` to each named counter. A metric is not worth failing the caller for."""
    try:
        await d1.batch([("INSERT INTO counters (name, value) VALUES (?, ?)"
                         " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, by))
                        for name in names])
    except Exception as e:
        print(f"counter {', '.join(names)} not counted: {e}")
