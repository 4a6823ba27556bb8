"""One JSON log line per request (Worker) and per job state change (Durable Object), for Workers Logs
([observability] in wrangler.toml). Users appear only as a short hash of their id."""

from __future__ import annotations

import hashlib
import json
import time


def hashed_user(user_id: str | None) -> str | None:
    return hashlib.sha256(user_id.encode()).hexdigest()[:12] if user_id else None


def request_line(method: str, route: str | None, status: int, job_id: str | None, user_id: str | None,
                 started: float) -> str:
    return json.dumps({"event": "request", "method": method, "route": route, "status": status, "job_id": job_id,
                       "user": hashed_user(user_id), "ms": round((time.time() - started) * 1000, 1)})


def state_change_line(job, events: list[dict], lease_expired: bool) -> str:
    return json.dumps({"event": "job_state", "job_id": job.job_id, "status": job.status, "seq": job.seq,
                       "changes": [e["type"] for e in events], "attempts": job.attempts,
                       "lease_expired": lease_expired, "user": hashed_user(job.user_id)})
