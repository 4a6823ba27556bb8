"""LocalQueueBroker: the Cloudflare Queues HTTP pull contract, served locally.

wrangler dev has no pull endpoint. Locally the Worker is the gpu-jobs queue's push consumer and
hands each message here; this object leases them out exactly as Queues does for HTTP pull
consumers: `pull(batch_size, visibility_timeout_ms)` returns messages with a `lease_id` and an
`attempts` count, hidden until acked, retried (optionally delayed) or their visibility times out.
A message delivered `max_deliveries` times without an ack goes to the dead-letter table, like a
queue's dead_letter_queue. Production never uses this object (LOCAL_PULL_QUEUE is off there).
"""

from __future__ import annotations

import json
import secrets
import time

from workers import DurableObject

from controlplane import bindings

LOCAL_QUEUE_ID = "gpu-jobs"
MAX_DELIVERIES = 5
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, body TEXT NOT NULL, ts_ms INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, visible_at_ms INTEGER NOT NULL, lease_id TEXT)",
    "CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at_ms)",
    "CREATE TABLE IF NOT EXISTS dead (id TEXT PRIMARY KEY, body TEXT NOT NULL, attempts INTEGER, dead_at_ms INTEGER)",
)


def _now_ms() -> int:
    return int(time.time() * 1000)


class LocalQueueBroker(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        for statement in SCHEMA:
            ctx.storage.sql.exec(statement)

    def _rows(self, sql: str, *params) -> list[dict]:
        return bindings.to_py(self.ctx.storage.sql.exec(sql, *params).toArray()) or []

    async def enqueue(self, messages_json: str) -> int:
        now = _now_ms()
        for m in json.loads(messages_json):
            self.ctx.storage.sql.exec(
                "INSERT OR IGNORE INTO messages (id, body, ts_ms, visible_at_ms) VALUES (?, ?, ?, ?)",
                m["id"], m["body"], m.get("timestamp_ms", now), now)
        return len(json.loads(messages_json))

    async def pull(self, batch_size: int, visibility_timeout_ms: int) -> str:
        now = _now_ms()
        self._bury_exhausted(now)
        rows = self._rows("SELECT * FROM messages WHERE visible_at_ms <= ? ORDER BY ts_ms, id LIMIT ?", now, batch_size)
        out = []
        for row in rows:
            lease = secrets.token_urlsafe(24)
            attempts = row["attempts"] + 1
            self.ctx.storage.sql.exec(
                "UPDATE messages SET attempts = ?, lease_id = ?, visible_at_ms = ? WHERE id = ?",
                attempts, lease, now + visibility_timeout_ms, row["id"])
            out.append({"body": row["body"], "id": row["id"], "timestamp_ms": row["ts_ms"], "attempts": attempts,
                        "lease_id": lease, "metadata": {"CF-Content-Type": "text"}})
        return json.dumps(out)

    async def ack(self, acks_json: str, retries_json: str) -> str:
        now = _now_ms()
        acked = retried = 0
        for a in json.loads(acks_json):
            before = self._count("lease_id = ?", a["lease_id"])
            self.ctx.storage.sql.exec("DELETE FROM messages WHERE lease_id = ?", a["lease_id"])
            acked += before
        for r in json.loads(retries_json):
            delay_ms = int(float(r.get("delay_seconds", 0)) * 1000)
            retried += self._count("lease_id = ?", r["lease_id"])
            self.ctx.storage.sql.exec("UPDATE messages SET lease_id = NULL, visible_at_ms = ? WHERE lease_id = ?",
                                      now + delay_ms, r["lease_id"])
        return json.dumps({"ackCount": acked, "retryCount": retried, "warnings": []})

    async def stats(self) -> str:
        now = _now_ms()
        return json.dumps({
            "backlog": self._count("1 = 1"),
            "visible": self._count("visible_at_ms <= ?", now),
            "in_flight": self._count("visible_at_ms > ? AND lease_id IS NOT NULL", now),
            "dead": self._rows("SELECT count(*) AS n FROM dead")[0]["n"],
        })

    def _count(self, where: str, *params) -> int:
        return self._rows(f"SELECT count(*) AS n FROM messages WHERE {where}", *params)[0]["n"]

    def _bury_exhausted(self, now: int) -> None:
        self.ctx.storage.sql.exec(
            "INSERT OR REPLACE INTO dead (id, body, attempts, dead_at_ms) SELECT id, body, attempts, ?"
            " FROM messages WHERE attempts >= ? AND visible_at_ms <= ?", now, MAX_DELIVERIES, now)
        self.ctx.storage.sql.exec("DELETE FROM messages WHERE attempts >= ? AND visible_at_ms <= ?",
                                  MAX_DELIVERIES, now)
