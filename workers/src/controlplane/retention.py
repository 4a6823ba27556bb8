"""Retention: what is deleted, when. The Worker's Cron Trigger (`scheduled`) runs `sweep`:

- uploads (videos/raw/) older than UPLOAD_TTL_S, unless a pending or processing job reads them;
- outputs of complete jobs once their `expires_at` (completed_at + OUTPUT_TTL_S) has passed; a download
  after that is a 410 even before the sweep runs;
- checkpoints (checkpoints/<job>/) of jobs that are finished (complete, error, cancelled) or gone, which
  a job that errors, dead-letters or is cancelled while pending leaves behind;
- multipart uploads created longer than MULTIPART_TTL_S ago and never completed (aborted; their parts
  cost storage and are invisible to a listing).

It never touches a pending or processing job, nor what such a job reads or resumes from. Each run does
at most `batch` deletions of each kind and the next run goes on, so one run stays short. R2 lifecycle
rules (scripts/deploy.sh) are the backstop, with longer ages.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Optional

from controlplane import job_state, metrics
from controlplane.http import HttpError
from controlplane.job_state import Job
from controlplane.store import chunks
from jobspec import JOB_SPEC, UPLOAD_PREFIX, input_keys

CHECKPOINT_PREFIX = "checkpoints/"
ACTIVE = ("pending", "processing")


@dataclass(frozen=True)
class RetentionPolicy:
    upload_ttl_s: float = 7 * 86400
    output_ttl_s: float = 30 * 86400
    multipart_ttl_s: float = 86400
    batch: int = 5000  # objects of each kind deleted per run (R2 deletes 1000 keys per call)


# ------------------------------------------------------------------ the job's side


def stamp_expiry(job: Job, policy: RetentionPolicy) -> None:
    """A complete job's output expires output_ttl_s after completion (shown as the view's expires_at)."""
    if job.status == "complete" and job.expires_at is None and job.completed_at is not None:
        job.expires_at = job.completed_at + policy.output_ttl_s


def check_not_expired(job: Job, now: float) -> None:
    if job.expires_at is not None and job.expires_at <= now:
        raise HttpError(410, "expired", f"the export expired at {job_state.iso(job.expires_at)} and has been deleted; "
                                        "run the job again to get a new one")


# ------------------------------------------------------------------ multipart uploads (D1 register)


async def track_multipart(d1, user_id: str, key: str, upload_id: str, now: float) -> None:
    await d1.run("INSERT OR REPLACE INTO multipart_uploads (upload_id, user_id, key, created_at) VALUES (?, ?, ?, ?)",
                 upload_id, user_id, key, now)


async def untrack_multipart(d1, upload_id: str) -> None:
    await d1.run("DELETE FROM multipart_uploads WHERE upload_id = ?", upload_id)


# ------------------------------------------------------------------ the sweep


async def _active_inputs(d1) -> set[str]:
    keys: set[str] = set()
    for row in await d1.all("SELECT spec FROM jobs WHERE status IN ('pending', 'processing')"):
        keys.update(input_keys(JOB_SPEC.validate_python(json.loads(row["spec"]))))
    return keys


async def _expire_uploads(bucket, d1, policy: RetentionPolicy, now: float) -> int:
    keep = await _active_inputs(d1)
    cutoff_ms = (now - policy.upload_ttl_s) * 1000
    doomed = [o["key"] async for o in bucket.objects(UPLOAD_PREFIX)
              if o["uploaded_ms"] < cutoff_ms and o["key"] not in keep]
    doomed = doomed[:policy.batch]
    await bucket.delete(doomed)
    return len(doomed)


def checkpoint_job(key: str) -> Optional[str]:
    rest = key[len(CHECKPOINT_PREFIX):]
    return rest.split("/", 1)[0] if "/" in rest else None


async def _statuses(d1, job_ids: list[str]) -> dict[str, str]:
    found = {}
    for part in chunks(job_ids):
        rows = await d1.all(f"SELECT id, status FROM jobs WHERE id IN ({', '.join('?' * len(part))})", *part)
        found.update({r["id"]: r["status"] for r in rows})
    return found


async def _delete_orphan_checkpoints(bucket, d1, policy: RetentionPolicy) -> int:
    by_job: dict[str, list[str]] = {}
    async for o in bucket.objects(CHECKPOINT_PREFIX):
        if job_id := checkpoint_job(o["key"]):
            by_job.setdefault(job_id, []).append(o["key"])
    statuses = await _statuses(d1, list(by_job))
    doomed = [k for job_id, keys in by_job.items() if statuses.get(job_id) not in ACTIVE for k in keys]
    doomed = doomed[:policy.batch]
    await bucket.delete(doomed)
    return len(doomed)


async def _expire_outputs(bucket, d1, policy: RetentionPolicy, now: float) -> int:
    rows = await d1.all("SELECT id, output_key FROM jobs WHERE status = 'complete' AND expires_at <= ?"
                        " AND output_key IS NOT NULL AND output_deleted_at IS NULL LIMIT ?", now, policy.batch)
    await bucket.delete([r["output_key"] for r in rows])
    for part in chunks([r["id"] for r in rows], others=1):
        await d1.run(f"UPDATE jobs SET output_deleted_at = ? WHERE id IN ({', '.join('?' * len(part))})", now, *part)
    return len(rows)


async def _abort_abandoned_multipart(bucket, d1, policy: RetentionPolicy, now: float) -> int:
    rows = await d1.all("SELECT upload_id, key FROM multipart_uploads WHERE created_at < ? LIMIT ?",
                        now - policy.multipart_ttl_s, policy.batch)
    for row in rows:
        try:
            await bucket.abort_multipart(row["key"], row["upload_id"])
        except Exception:
            pass  # completed or aborted already, or expired by R2 itself
        await untrack_multipart(d1, row["upload_id"])
    return len(rows)


async def sweep(bucket, d1, policy: RetentionPolicy, now: float) -> dict:
    """One run over the bucket (bindings.R2Bucket) and D1 (bindings.D1)."""
    started = time.time()
    done = {
        "uploads_deleted": await _expire_uploads(bucket, d1, policy, now),
        "outputs_deleted": await _expire_outputs(bucket, d1, policy, now),
        "checkpoints_deleted": await _delete_orphan_checkpoints(bucket, d1, policy),
        "multipart_aborted": await _abort_abandoned_multipart(bucket, d1, policy, now),
    }
    for name, n in done.items():
        if n:
            await metrics.count(d1, f"retention_{name}", by=n)
    return {**done, "ms": round((time.time() - started) * 1000, 1)}
