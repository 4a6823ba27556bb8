"""The state machine of one export job: plain Python, no I/O.

ExportJobState (the Durable Object) loads a `Job`, calls one transition, persists the result and
then carries out the returned `Outcome`: broadcast its events, re-queue, dead-letter. Every rule
about what may happen to a job lives here, so unit tests can check all of them without a runtime.

    pending --claim--> processing --complete--> complete
       ^                   |  |----fail(fatal)/out of attempts--> error --retry--> pending
       |                   |  `----cancel--> cancelled
       `--lease expired / retryable failure / spot interruption (checkpoint kept)

Terminal states never change. Progress and checkpoints only move forward. A report from a pod that
does not hold the current lease is refused; a repeat of the report that finished the job is
acknowledged and changes nothing, so a pod may safely retry it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

# Plain Python, no pydantic: the rules run (and are unit-tested) on plain values; the Durable Object
# validates what pods send with jobspec before it calls a transition.
STATUSES = ("pending", "processing", "complete", "error", "cancelled")
TERMINAL_STATUSES = frozenset({"complete", "error", "cancelled"})


def checkpoint_prefix(job_id: str) -> str:
    return f"checkpoints/{job_id}/"


def output_prefix(job_id: str) -> str:
    return f"videos/output/{job_id}/"


def output_key(job_id: str, lease_id: str) -> str:
    """Each lease renders to a key of its own, granted with it: a pod that lost its lease cannot
    overwrite the output another pod committed, and what no lease committed can be found and removed."""
    return f"{output_prefix(job_id)}{lease_id}.mp4"


@dataclass(frozen=True)
class Policy:
    lease_timeout_s: float = 90.0
    heartbeat_interval_s: float = 10.0
    max_attempts: int = 3
    requeue_delay_s: float = 5.0
    # A job still pending this long after its queue message was due is sent another one (and again at
    # twice, four times... that long after it was due): the state change that re-queued it is stored before the message is
    # sent, and a message can be lost in between (the sender dies, the send fails). A duplicate
    # message is harmless: the claim decides who renders the job.
    redispatch_s: float = 300.0


@dataclass
class Job:
    job_id: str
    user_id: str
    type: str
    spec: dict
    created_at: float
    status: str = "pending"
    progress: float = 0.0
    frame: int = 0
    total_frames: Optional[int] = None
    fps: float = 0.0
    eta_s: Optional[float] = None
    checkpoint_frame: int = 0
    attempts: int = 0  # lost leases + retryable failures; max_attempts of them -> error
    dispatches: int = 1  # queue messages sent for this job
    dispatch_due: Optional[float] = None  # when the latest message became visible (None: updated_at)
    redispatches: int = 0  # messages re-sent since then, because no pod claimed the job
    resume_count: int = 0  # claims that started from a checkpoint
    interruptions: int = 0
    lease_id: Optional[str] = None
    last_lease_id: Optional[str] = None  # the lease that finished the job (idempotent repeats)
    pod_id: Optional[str] = None
    heartbeat_at: Optional[float] = None
    started_at: Optional[float] = None
    completed_at: Optional[float] = None
    updated_at: float = 0.0
    output_key: Optional[str] = None
    output_bytes: Optional[int] = None
    error: Optional[str] = None
    gpu_seconds: float = 0.0
    seq: int = 0
    webhook: Optional[dict] = None  # {"url", "events"}: deliveries are the DO's (webhook_outbox.py)
    expires_at: Optional[float] = None  # when the output is deleted (retention.py)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Job":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Outcome:
    """What the DO must do after a transition, besides persisting and mirroring the job."""

    events: list = field(default_factory=list)
    requeue_delay_s: Optional[float] = None
    dead_letter: Optional[str] = None
    reply: dict = field(default_factory=dict)
    changed: bool = True
    lease_expired: bool = False  # the lease was taken back from a silent pod (counted for /metrics)


class Rejected(Exception):
    """A refused report or action. `discard`: an R2 key the refusal leaves unused for good (the output
    of a lease that can no longer commit it), for the DO to delete."""

    def __init__(self, status: int, code: str, reason: str, discard: Optional[str] = None):
        super().__init__(reason)
        self.status, self.code, self.reason, self.discard = status, code, reason, discard


def new_job(job_id: str, user_id: str, spec: dict, now: float) -> Job:
    return Job(job_id=job_id, user_id=user_id, type=spec["type"], spec=spec, created_at=now, updated_at=now,
               dispatch_due=now)


def _dispatched(job: Job, now: float, delay_s: float = 0.0) -> None:
    """A new queue message is sent for the job, visible after delay_s."""
    job.dispatches += 1
    job.dispatch_due, job.redispatches = now + delay_s, 0


# ------------------------------------------------------------------ views


def iso(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def view(job: Job) -> dict:
    """The job as users see it (API responses and the WebSocket snapshot)."""
    processing_s = None
    if job.started_at is not None:
        processing_s = round((job.completed_at or job.updated_at) - job.started_at, 3)
    return {
        "job_id": job.job_id,
        "type": job.type,
        "status": job.status,
        "progress": round(job.progress, 2),
        "frame": job.frame,
        "total_frames": job.total_frames,
        "fps": round(job.fps, 2),
        "eta_s": job.eta_s,
        "checkpoint": {
            "frame": job.checkpoint_frame,
            "total_frames": job.total_frames,
            "resume_count": job.resume_count,
        } if job.checkpoint_frame or job.resume_count else None,
        "attempts": job.attempts,
        "resume_count": job.resume_count,
        "interruptions": job.interruptions,
        "error": job.error,
        "output_ready": job.status == "complete",
        "output_bytes": job.output_bytes,
        "gpu_seconds": round(job.gpu_seconds, 3),
        "seq": job.seq,
        "timing": {
            "created_at": iso(job.created_at),
            "started_at": iso(job.started_at),
            "completed_at": iso(job.completed_at),
            "processing_seconds": processing_s,
        },
        "expires_at": iso(job.expires_at),
    }


def _event(job: Job, kind: str, **data) -> dict:
    """What happened, with only what the job view does not say (who, why); the DO sends it with the
    whole view once the transition is done (`published`)."""
    job.seq += 1
    return {"type": kind, "job_id": job.job_id, "seq": job.seq, **data}


def published(event: dict, job: Job) -> dict:
    """An event as subscribers get it: what changed, next to the job as it now is."""
    return {**event, "job": view(job)}


def snapshot(job: Job) -> dict:
    """The first message on a socket (and the answer to `subscribe`): the job as it is now."""
    return {"type": "snapshot", "job_id": job.job_id, "seq": job.seq, "job": view(job)}


def _percent(frame: int, total: Optional[int]) -> float:
    if not total:
        return 0.0
    return min(99.9, 100.0 * frame / total)  # 100 only when the output is stored


# ------------------------------------------------------------------ lease checks


def _require_lease(job: Job, lease_id: str, discard: Optional[str] = None) -> None:
    if job.lease_id is None or job.lease_id != lease_id:
        raise Rejected(409, "lease_not_held", f"this pod does not hold the lease on job {job.job_id} "
                                              f"(job is {job.status})", discard)


def _finished_by(job: Job, lease_id: str) -> bool:
    """A repeat of the report that finished the job, from the pod that finished it."""
    return job.terminal and lease_id == job.last_lease_id


def _release(job: Job) -> None:
    job.last_lease_id, job.lease_id = job.lease_id, None


def _ignored(job: Job, why: str, heartbeat: bool = False) -> Outcome:
    """Nothing happens; with `heartbeat`, the report still renewed the lease (that must be stored)."""
    return Outcome(changed=heartbeat, reply={"ignored": True, "reason": why, "status": job.status})


# ------------------------------------------------------------------ transitions (pods)


def claim(job: Job, pod_id: str, lease_id: str, now: float, policy: Policy) -> Outcome:
    if job.terminal:
        raise Rejected(409, "job_finished", f"job is {job.status}")
    taken_back = job.status == "processing"
    if taken_back:
        if not lease_expired(job, now, policy):
            raise Rejected(409, "already_leased", f"job is being rendered by pod {job.pod_id}")
        out = _requeue_or_fail(job, now, policy, "lease_expired", f"pod {job.pod_id} stopped sending heartbeats")
        if job.terminal:
            raise Rejected(409, "job_finished", f"job is {job.status}")
        out.requeue_delay_s = None  # this claim takes the job now; no extra queue message
    job.status, job.lease_id, job.pod_id = "processing", lease_id, pod_id
    job.heartbeat_at = job.updated_at = now
    job.started_at = job.started_at or now
    job.error = None
    if job.checkpoint_frame > 0:
        job.resume_count += 1
        event = _event(job, "resumed", pod_id=pod_id)
    else:
        event = _event(job, "started", pod_id=pod_id)
    reply = {
        "job_id": job.job_id,
        "lease_id": lease_id,
        "attempt": job.attempts + 1,
        "resume_count": job.resume_count,
        "spec": job.spec,
        "checkpoint_prefix": checkpoint_prefix(job.job_id),
        "output_key": output_key(job.job_id, lease_id),
        "heartbeat_interval_s": policy.heartbeat_interval_s,
        "lease_timeout_s": policy.lease_timeout_s,
    }
    return Outcome(events=[event], reply=reply, lease_expired=taken_back)


def heartbeat(job: Job, lease_id: str, now: float) -> Outcome:
    _require_lease(job, lease_id)
    job.heartbeat_at = now
    return Outcome(changed=True, reply={"status": job.status})


def progress(job: Job, lease_id: str, frame: int, total: int, fps: float, eta_s, now: float) -> Outcome:
    _require_lease(job, lease_id)
    job.heartbeat_at = now
    if frame <= job.frame and total == job.total_frames:
        return _ignored(job, "stale progress", heartbeat=True)
    job.frame, job.total_frames = max(frame, job.frame), total
    job.fps, job.eta_s, job.updated_at = fps, eta_s, now
    job.progress = max(job.progress, _percent(job.frame, total))
    return Outcome(events=[_event(job, "progress")])


def checkpoint(job: Job, lease_id: str, frame: int, total: int, now: float) -> Outcome:
    _require_lease(job, lease_id)
    job.heartbeat_at = now
    if frame <= job.checkpoint_frame:
        return _ignored(job, "stale checkpoint", heartbeat=True)
    job.checkpoint_frame, job.total_frames, job.updated_at = frame, total, now
    job.frame = max(job.frame, frame)
    job.progress = max(job.progress, _percent(job.frame, total))
    return Outcome(events=[_event(job, "checkpoint")])


def complete(job: Job, lease_id: str, out_key: str, size_bytes: int, frames: int, gpu_seconds: float,
             now: float) -> Outcome:
    """Commit the output stored under the key granted with this lease. A lease that may no longer
    commit it (lost, or its job cancelled) is refused, and that key's object is discarded."""
    if job.status == "complete" and lease_id == job.last_lease_id:
        return _ignored(job, "already complete")
    granted = output_key(job.job_id, lease_id)
    _require_lease(job, lease_id, discard=granted)
    if out_key != granted:
        raise Rejected(422, "wrong_output_key", f"output_key must be {granted}, the key granted with this lease")
    job.status, job.progress, job.completed_at, job.updated_at = "complete", 100.0, now, now
    job.output_key, job.output_bytes = out_key, size_bytes
    job.frame = job.checkpoint_frame = job.total_frames = frames
    job.gpu_seconds += gpu_seconds
    job.eta_s = 0.0
    _release(job)
    return Outcome(events=[_event(job, "complete")])


def fail(job: Job, lease_id: str, reason: str, retryable: bool, gpu_seconds: float, now: float,
         policy: Policy) -> Outcome:
    if _finished_by(job, lease_id):
        return _ignored(job, f"already {job.status}")
    _require_lease(job, lease_id)
    job.gpu_seconds += gpu_seconds
    if retryable:
        return _requeue_or_fail(job, now, policy, "failed", reason)
    return _to_error(job, now, reason)


def interrupted(job: Job, lease_id: str, frame: int, reason: str, gpu_seconds: float, now: float) -> Outcome:
    """A spot notice: the pod saved a checkpoint and leaves. Not the job's fault: no attempt used."""
    if job.status == "pending" and lease_id == job.last_lease_id:
        return _ignored(job, "already re-queued")
    _require_lease(job, lease_id)
    job.interruptions += 1
    job.gpu_seconds += gpu_seconds
    _release(job)
    job.status, job.pod_id, job.updated_at = "pending", None, now
    _dispatched(job, now)
    ev = _event(job, "requeued", cause="interrupted", reason=reason, delay_s=0.0)
    return Outcome(events=[ev], requeue_delay_s=0.0)


# ------------------------------------------------------------------ transitions (time, users)


def lease_expired(job: Job, now: float, policy: Policy) -> bool:
    return job.status == "processing" and now - (job.heartbeat_at or 0) > policy.lease_timeout_s


def next_alarm(job: Job, policy: Policy) -> Optional[float]:
    """When the DO should next look at this job: its lease while processing, its queue message while
    pending (None: nothing to watch)."""
    if job.status == "pending":
        return _redispatch_at(job, policy)
    if job.status != "processing":
        return None
    return (job.heartbeat_at or 0) + policy.lease_timeout_s + 0.05


def _redispatch_at(job: Job, policy: Policy) -> float:
    due = job.dispatch_due if job.dispatch_due is not None else job.updated_at
    return due + policy.redispatch_s * 2 ** job.redispatches


def on_alarm(job: Job, now: float, policy: Policy) -> Outcome:
    """The DO's alarm: a lease that may have expired, or a pending job nobody has claimed."""
    if job.status == "pending":
        return redispatch(job, now, policy)
    return expire_lease(job, now, policy)


def redispatch(job: Job, now: float, policy: Policy) -> Outcome:
    """Send a pending job's queue message again when no pod claimed it in time (see Policy). Nothing
    a user sees changes: no event, no attempt used."""
    if job.status != "pending" or now < _redispatch_at(job, policy):
        return _ignored(job, "not due")
    job.dispatches += 1
    job.redispatches += 1
    return Outcome(requeue_delay_s=0.0)


def expire_lease(job: Job, now: float, policy: Policy) -> Outcome:
    """The alarm: a processing job whose pod stopped heart-beating goes back to the queue."""
    if not lease_expired(job, now, policy):
        return _ignored(job, "lease alive")
    silence = math.floor(now - (job.heartbeat_at or now))
    out = _requeue_or_fail(job, now, policy, "lease_expired", f"no heartbeat from pod {job.pod_id} for {silence} s")
    out.lease_expired = True
    return out


def cancel(job: Job, now: float) -> Outcome:
    if job.terminal:
        raise Rejected(409, "job_finished", f"job is already {job.status}")
    _release(job)
    job.status, job.updated_at, job.completed_at = "cancelled", now, now
    return Outcome(events=[_event(job, "cancelled")])


def retry(job: Job, now: float) -> Outcome:
    if job.status != "error":
        raise Rejected(409, "not_failed", f"only a failed job can be retried (job is {job.status})")
    job.status, job.error, job.attempts, job.updated_at, job.completed_at = "pending", None, 0, now, None
    _dispatched(job, now)
    ev = _event(job, "requeued", cause="retried", reason="retried by user", delay_s=0.0)
    return Outcome(events=[ev], requeue_delay_s=0.0)


# ------------------------------------------------------------------ shared endings


def _requeue_or_fail(job: Job, now: float, policy: Policy, cause: str, reason: str) -> Outcome:
    job.attempts += 1
    _release(job)
    job.pod_id = None
    if job.attempts >= policy.max_attempts:
        out = _to_error(job, now, f"{reason} (gave up after {job.attempts} attempts)")
        out.dead_letter = job.error
        return out
    job.status, job.updated_at = "pending", now
    delay = policy.requeue_delay_s * 2 ** (job.attempts - 1)
    _dispatched(job, now, delay)
    ev = _event(job, "requeued", cause=cause, reason=reason, delay_s=delay, max_attempts=policy.max_attempts)
    return Outcome(events=[ev], requeue_delay_s=delay)


def _to_error(job: Job, now: float, reason: str) -> Outcome:
    if job.lease_id is not None:
        _release(job)
    job.status, job.error, job.updated_at, job.completed_at = "error", reason, now, now
    return Outcome(events=[_event(job, "error")])
