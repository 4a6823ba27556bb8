"""UsageCounter: one Durable Object per client address or user ("ip:<address>", "user:<id>"), holding
its rate buckets and quota counters (limits.py has the rules). One object serialises all of a
subject's requests, so counts are exact; they live in the object's SQLite storage."""

from __future__ import annotations

import time

from workers import DurableObject

from controlplane import bindings, limits

SCHEMA = "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL, at REAL NOT NULL)"


class UsageCounter(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec(SCHEMA)

    def _get(self, name: str) -> tuple[float, float] | None:
        rows = bindings.to_py(self.ctx.storage.sql.exec("SELECT value, at FROM counters WHERE name = ?",
                                                        name).toArray())
        return (rows[0]["value"], rows[0]["at"]) if rows else None

    def _put(self, name: str, value: float, at: float) -> None:
        self.ctx.storage.sql.exec("INSERT OR REPLACE INTO counters (name, value, at) VALUES (?, ?, ?)", name, value, at)

    async def take(self, name: str, count: int, period_s: float) -> float:
        """One request against the rate `count` per `period_s`: 0 if it passes, else seconds to wait."""
        now = time.time()
        tokens, at = self._get(name) or (count, now)
        tokens, wait = limits.take(tokens, at, limits.Rate(count, period_s), now)
        self._put(name, tokens, now)
        return wait

    async def spend(self, name: str, amount: float, limit: float, window_s: float) -> float:
        """`amount` against a quota of `limit` per window: 0 if spent, else seconds until the next window."""
        now = time.time()
        used, start = self._get(name) or (0.0, 0.0)
        used, start, wait = limits.spend(used, start, amount, limit, window_s, now)
        self._put(name, used, start)
        return wait
