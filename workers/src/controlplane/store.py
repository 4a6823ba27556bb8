"""D1: the queryable mirror of the jobs (listing, recovery, /health). The job's Durable Object is the
authority and writes its whole state here after every change, so a lost or late mirror write is
repaired by the next one. SQL builders are pure; `Store` runs them on a D1 wrapper."""

from __future__ import annotations

import base64
import json

from controlplane.job_state import STATUSES, Job

MIRRORED = ("status", "progress", "frame", "total_frames", "fps", "eta_s", "checkpoint_frame", "attempts",
            "resume_count", "interruptions", "pod_id", "heartbeat_at", "output_key", "output_bytes", "error",
            "gpu_seconds", "seq", "started_at", "completed_at", "updated_at", "expires_at")
IDEMPOTENCY_TTL_S = 24 * 3600
MAX_PAGE = 100
D1_MAX_PARAMS = 100  # D1 refuses a statement with more bound parameters ("too many SQL variables")


def chunks(items: list, others: int = 0):
    """`items` in slices that fit one statement's IN (...) next to `others` more bound parameters."""
    size = D1_MAX_PARAMS - others
    for i in range(0, len(items), size):
        yield items[i:i + size]


def insert_job_sql(job: Job, max_active: int | None = None) -> tuple[str, tuple]:
    """The job's row; with max_active, only while its user has fewer jobs pending or processing (one
    statement, so concurrent creates cannot pass the quota together)."""
    cols = ("id", "user_id", "project_id", "type", "spec", "created_at") + MIRRORED
    values = (job.job_id, job.user_id, job.spec.get("project_id"), job.type, json.dumps(job.spec),
              job.created_at) + tuple(getattr(job, c) for c in MIRRORED)
    if max_active is None:
        return f"INSERT INTO jobs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values
    return (f"INSERT INTO jobs ({', '.join(cols)}) SELECT {', '.join('?' * len(cols))} WHERE (SELECT count(*)"
            " FROM jobs WHERE user_id = ? AND status IN ('pending', 'processing')) < ?",
            values + (job.user_id, max_active))


def mirror_sql(job: Job) -> tuple[str, tuple]:
    sets = ", ".join(f"{c} = ?" for c in MIRRORED)
    # A job running again (retried) has not been seen finished: it is announced when it finishes again.
    seen = "seen_at" if job.terminal else "NULL"
    # seq guards against an older mirror write landing after a newer one.
    return (f"UPDATE jobs SET {sets}, seen_at = {seen} WHERE id = ? AND seq <= ?",
            tuple(getattr(job, c) for c in MIRRORED) + (job.job_id, job.seq))


def job_from_row(row: dict) -> Job:
    data = dict(row)
    data["job_id"] = data.pop("id")
    data["spec"] = json.loads(data["spec"])
    return Job.from_dict(data)


def encode_cursor(row: dict) -> str:
    return base64.urlsafe_b64encode(f"{row['created_at']!r}|{row['id']}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return float(created), job_id
    except Exception:
        raise ValueError("invalid cursor") from None


def list_sql(user_id: str, statuses: list[str] | None, limit: int, cursor: str | None) -> tuple[str, tuple]:
    where, params = ["user_id = ?"], [user_id]
    statuses = list(dict.fromkeys(statuses or ()))  # ?status=pending,pending,... binds each status once
    if statuses:
        where.append(f"status IN ({', '.join('?' * len(statuses))})")
        params += statuses
    if cursor:
        created, job_id = decode_cursor(cursor)
        where.append("(created_at < ? OR (created_at = ? AND id < ?))")
        params += [created, created, job_id]
    sql = f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?"
    return sql, tuple(params) + (limit + 1,)


class Store:
    def __init__(self, d1):
        self.d1 = d1

    async def owned_job(self, user_id: str, job_id: str) -> Job | None:
        row = await self.d1.first("SELECT * FROM jobs WHERE id = ? AND user_id = ?", job_id, user_id)
        return job_from_row(row) if row else None

    async def page(self, user_id, statuses, limit, cursor) -> tuple[list[Job], str | None]:
        sql, params = list_sql(user_id, statuses, limit, cursor)
        rows = await self.d1.all(sql, *params)
        more = len(rows) > limit
        rows = rows[:limit]
        return [job_from_row(r) for r in rows], (encode_cursor(rows[-1]) if more else None)

    async def active(self, user_id: str) -> list[Job]:
        """Running jobs plus finished ones the user has not seen yet ("completed while you were away")."""
        rows = await self.d1.all(
            "SELECT * FROM jobs WHERE user_id = ? AND (status IN ('pending', 'processing') OR seen_at IS NULL)"
            " ORDER BY created_at DESC LIMIT 200", user_id)
        return [job_from_row(r) for r in rows]

    async def mark_seen(self, user_id: str, job_ids: list[str], now: float) -> int:
        """Mark finished jobs seen, in statements that stay under D1's bound-parameter limit."""
        marked = 0
        for part in chunks(list(dict.fromkeys(job_ids)), others=2):
            marked += await self.d1.run(
                f"UPDATE jobs SET seen_at = ? WHERE user_id = ? AND id IN ({', '.join('?' * len(part))})"
                " AND seen_at IS NULL AND status IN ('complete', 'error', 'cancelled')", now, user_id, *part)
        return marked

    async def idempotent_job(self, user_id: str, key: str, now: float) -> dict | None:
        return await self.d1.first(
            "SELECT job_id, request_sha FROM idempotency_keys WHERE user_id = ? AND key = ? AND created_at > ?",
            user_id, key, now - IDEMPOTENCY_TTL_S)

    async def insert(self, job: Job, idempotency: tuple[str, str] | None, max_active: int | None = None) -> bool:
        """Whether the job was stored: not when its user already has max_active jobs pending or processing."""
        statements = [insert_job_sql(job, max_active)]
        if idempotency:
            key, sha = idempotency
            statements.insert(0, ("DELETE FROM idempotency_keys WHERE user_id = ? AND key = ? AND created_at <= ?",
                                  (job.user_id, key, job.created_at - IDEMPOTENCY_TTL_S)))
            statements.append(("INSERT INTO idempotency_keys (user_id, key, request_sha, job_id, created_at)"
                               " SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?)",
                               (job.user_id, key, sha, job.job_id, job.created_at, job.job_id)))
        changes = await self.d1.batch(statements)
        return changes[1 if idempotency else 0] == 1

    async def delete(self, job_id: str) -> None:
        await self.d1.batch([("DELETE FROM idempotency_keys WHERE job_id = ?", (job_id,)),
                             ("DELETE FROM jobs WHERE id = ?", (job_id,))])

    async def mirror(self, job: Job) -> None:
        sql, params = mirror_sql(job)
        await self.d1.run(sql, *params)

    async def dead_letter(self, job: Job, reason: str, now: float) -> None:
        await self.d1.run("INSERT OR REPLACE INTO dead_letters (job_id, user_id, reason, attempts, created_at)"
                          " VALUES (?, ?, ?, ?, ?)", job.job_id, job.user_id, reason, job.attempts, now)

    async def pod_seen(self, pod_id: str, job_id: str | None, now: float) -> None:
        await self.d1.run("INSERT INTO pods (pod_id, job_id, seen_at) VALUES (?, ?, ?) ON CONFLICT(pod_id)"
                          " DO UPDATE SET job_id = excluded.job_id, seen_at = excluded.seen_at", pod_id, job_id, now)

    async def health(self, now: float, live_window_s: float) -> dict:
        by_status = await self.d1.all("SELECT status, count(*) AS n, sum(gpu_seconds) AS gpu FROM jobs GROUP BY status")
        pods = await self.d1.first("SELECT count(*) AS n FROM pods WHERE seen_at > ?", now - live_window_s)
        dead = await self.d1.first("SELECT count(*) AS n FROM dead_letters")
        counts = {status: 0 for status in STATUSES}  # every status, so a scaler never meets a missing key
        counts.update({r["status"]: r["n"] for r in by_status})
        return {"by_status": counts,
                "gpu_seconds": sum(r["gpu"] or 0 for r in by_status),
                "live_pods": pods["n"], "dead_letters": dead["n"]}

    async def load(self, now: float, live_window_s: float) -> dict:
        """What a wait estimate needs, in one query: jobs waiting, live pods, recent seconds per job."""
        return await self.d1.first(
            "SELECT (SELECT count(*) FROM jobs WHERE status = 'pending') AS pending,"
            " (SELECT count(*) FROM pods WHERE seen_at > ?) AS pods,"
            " (SELECT avg(completed_at - started_at) FROM (SELECT completed_at, started_at FROM jobs"
            "  WHERE status = 'complete' ORDER BY completed_at DESC LIMIT 20)) AS per_job_s", now - live_window_s)
