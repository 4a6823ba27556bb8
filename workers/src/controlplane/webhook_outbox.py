"""The job's webhook deliveries, kept and sent by its Durable Object (at least once).

A state change the job's subscription wants becomes a delivery row in the object's own SQLite storage,
in the same turn that stores the change, with its `webhook-id` and body fixed from then on. The object's
alarm sends what is due (webhooks.py: signatures, retry schedule) and records every attempt; a failed one
is tried again with exponential backoff until 24 h have passed. Sending happens only in the alarm,
never while a pod's or a user's request waits, so a slow or failing receiver cannot hold up the job's
state machine; the rows survive restarts and hibernation, and the alarm is re-armed for the next due one.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

from controlplane import bindings, job_state, metrics, webhook_secrets, webhooks
from controlplane.job_state import Job

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS webhook_deliveries (id TEXT PRIMARY KEY, event TEXT NOT NULL, body TEXT NOT NULL,"
    " created_at REAL NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL,"
    " delivered_at REAL)",
    "CREATE TABLE IF NOT EXISTS webhook_attempts (delivery_id TEXT NOT NULL, n INTEGER NOT NULL, at REAL NOT NULL,"
    " status_code INTEGER, error TEXT, ms REAL, PRIMARY KEY (delivery_id, n))",
)
BATCH = 20  # deliveries sent per alarm; the alarm comes back at once for the rest
INTERRUPTED = "no answer recorded: in flight, or the Worker stopped during this attempt"


class WebhookOutbox:
    def __init__(self, ctx, d1, auth_secret: str, policy: webhooks.WebhookPolicy):
        self.sql, self.d1, self.auth_secret, self.policy = ctx.storage.sql, d1, auth_secret, policy
        self._ready = False

    def _rows(self, query: str, *params) -> list[dict]:
        if not self._ready:
            for statement in SCHEMA:
                self.sql.exec(statement)
            self._ready = True
        return bindings.to_py(self.sql.exec(query, *params).toArray()) or []

    # ---------------------------------------------------------------- after a state change

    def enqueue(self, job: Job, events: list[dict], now: float) -> int:
        """A delivery for each event the job's subscription wants. Progress is best-effort: while one
        progress delivery waits, later progress is not queued behind it."""
        queued = 0
        for event in events:
            kind = webhooks.wanted(job.webhook, event["type"])
            if kind is None:
                continue
            if kind == "progress" and self._rows(
                    "SELECT 1 AS x FROM webhook_deliveries WHERE event = 'progress' AND status = 'pending'"):
                continue
            body = json.dumps({"type": webhooks.payload_type(kind), "timestamp": job_state.iso(now),
                               "data": job_state.published(event, job)})
            self._rows("INSERT INTO webhook_deliveries (id, event, body, created_at, status, next_at)"
                       " VALUES (?, ?, ?, ?, 'pending', ?)", "msg_" + secrets.token_urlsafe(18), kind, body, now, now)
            queued += 1
        return queued

    def next_due(self, job: Job):
        """When the alarm must run for deliveries (None: nothing waits)."""
        if not job.webhook:
            return None
        rows = self._rows("SELECT min(next_at) AS at FROM webhook_deliveries WHERE status = 'pending'")
        return rows[0]["at"] if rows else None

    # ---------------------------------------------------------------- the alarm

    async def deliver_due(self, job: Job, now: float) -> None:
        if not job.webhook:
            return
        due = self._rows("SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ?"
                         " ORDER BY next_at LIMIT ?", now, BATCH)
        if due:
            keys = await webhook_secrets.signing_secrets(self.d1, self.auth_secret, job.user_id, now)
            await asyncio.gather(*(self._attempt(job, row, keys) for row in due))

    async def _attempt(self, job: Job, row: dict, keys: list[str]) -> None:
        """One attempt, recorded before it is sent (the runtime's output gate holds the request until the
        record is stored), so an attempt cut short by a restart is listed and counted, and retried."""
        started = time.time()
        attempts = row["attempts"] + 1
        self._rows("INSERT OR REPLACE INTO webhook_attempts (delivery_id, n, at, status_code, error, ms)"
                   " VALUES (?, ?, ?, NULL, ?, NULL)", row["id"], attempts, started, INTERRUPTED)
        self._rows("UPDATE webhook_deliveries SET attempts = ?, next_at = ? WHERE id = ?", attempts,
                   webhooks.next_attempt_at(row["created_at"], attempts, started, self.policy)
                   or started + self.policy.timeout_s, row["id"])
        status, error = None, None
        try:
            if not keys:
                raise PermissionError("the user has no webhook secret")
            url = webhooks.check_url(job.webhook["url"], self.policy)  # the rules may have tightened
            ts = int(started)
            status = await bindings.post(url, row["body"], webhooks.headers(keys, row["id"], ts, row["body"]),
                                         self.policy.timeout_s)
            if not webhooks.delivered(status):
                error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        except Exception as e:  # network error, timeout, refused URL: a failed attempt
            error = f"{type(e).__name__}: {e}"[:300]
        finished = time.time()
        self._rows("UPDATE webhook_attempts SET status_code = ?, error = ?, ms = ? WHERE delivery_id = ? AND n = ?",
                   status, error, round((finished - started) * 1000, 1), row["id"], attempts)
        retry_at = None
        if error is None:
            self._rows("UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, next_at = NULL,"
                       " delivered_at = ? WHERE id = ?", attempts, finished, row["id"])
        else:
            retry_at = webhooks.next_attempt_at(row["created_at"], attempts, finished, self.policy)
            self._rows("UPDATE webhook_deliveries SET status = ?, attempts = ?, next_at = ? WHERE id = ?",
                       "pending" if retry_at else "failed", attempts, retry_at, row["id"])
        outcome = "webhook_deliveries_ok" if error is None else (
            "webhook_attempts_failed" if retry_at else "webhook_deliveries_failed")
        await metrics.count(self.d1, "webhook_attempts", outcome)

    # ---------------------------------------------------------------- GET /api/jobs/{id}/webhooks

    def listing(self, job: Job) -> dict:
        if not job.webhook:
            return {"webhook": None, "deliveries": []}
        deliveries = self._rows("SELECT * FROM webhook_deliveries ORDER BY created_at, id")
        attempts = self._rows("SELECT * FROM webhook_attempts ORDER BY delivery_id, n")
        by_delivery: dict[str, list] = {}
        for a in attempts:
            by_delivery.setdefault(a["delivery_id"], []).append({
                "n": a["n"], "at": job_state.iso(a["at"]), "status_code": a["status_code"], "error": a["error"],
                "duration_ms": a["ms"]})
        return {"webhook": job.webhook, "deliveries": [{
            "webhook_id": d["id"], "event": d["event"], "status": d["status"], "created_at": job_state.iso(d["created_at"]),
            "delivered_at": job_state.iso(d["delivered_at"]), "next_attempt_at": job_state.iso(d["next_at"]),
            "attempts": by_delivery.get(d["id"], [])} for d in deliveries]}
