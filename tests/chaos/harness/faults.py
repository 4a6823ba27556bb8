"""The faults of a chaos run, each aimed so that it interrupts a render: SIGKILL (the lease must
expire), SIGTERM (the spot path), a spot notice from the metadata URL, a pending job's queue message
acked unread (lost), and a restart of wrangler dev itself."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Optional

import httpx

from gpu_export import ApiError, Unavailable
from scripts.gpu_worker_proc import queue_client
from scripts.localstack import LocalStack

from ...metadata import MetadataServer
from .fleet import Fleet
from .proxy import FaultProxy
from .watch import JobWatch


@dataclass
class Injection:
    kind: str  # kill | term | spot | lose | restart
    at: float
    until: Optional[float] = None
    worker: Optional[str] = None
    job_id: Optional[str] = None
    confirm_seq: int = 0
    checkpoint_frame: int = 0
    resume_count: int = 0
    effective: Optional[bool] = None  # it ended the worker's claim without completing the job (restart: same port)
    settled: bool = False  # the DO's stream shows how the claim ended (or it is too late to know)
    end: Optional[dict] = None  # the DO's event that ended the signalled claim (verify), if its stream shows it
    note: str = ""

    @property
    def ended_by(self) -> Optional[str]:
        return self.end["type"] if self.end else None


@dataclass
class Target:
    """What a fault may act on."""

    stack: LocalStack
    fleet: Fleet
    spot: MetadataServer
    proxy: FaultProxy
    watches: dict[str, JobWatch]  # each with its user's quick client (probe)
    targeted: Counter


def inject(kind: str, target: Target, log) -> Optional[Injection]:
    """Carry out one planned injection if it can be done now."""
    if kind == "restart":
        return _restart(target, log)
    if kind == "lose":
        return _lose_message(target, log)
    return _signal(kind, target, log)


def _restart(target: Target, log) -> Optional[Injection]:
    if not any(w.state()[1] == "processing" for w in list(target.watches.values())):
        return None
    stack = target.stack
    url, port = stack.url, stack.port
    started, began = time.monotonic(), time.time()
    log("restarting wrangler dev")
    stack.restart()
    seconds = time.monotonic() - started
    kept = stack.port == port and stack.url == url
    if not kept:  # the workers and the proxy must follow the stack to its new address
        target.proxy.upstream = stack.url
        for worker in target.fleet.live():
            worker.kill()
    log(f"wrangler dev back after {seconds:.1f} s on the same port: {kept}")
    note = f"{seconds:.1f} s" + ("" if kept else f"; came back on {stack.url}, not {url}")
    return Injection("restart", began, until=time.time(), note=note, effective=kept)


def _signal(kind: str, target: Target, log) -> Optional[Injection]:
    """The render must still be going when the signal lands: a checkpoint stored, and at least three
    segments still to render; the job with the most left first."""
    live = {w.name: w for w in target.fleet.live()}
    segment = target.fleet.cfg.checkpoint_frames
    for job_id, watch in sorted(list(target.watches.items()), key=lambda item: -item[1].remaining()):
        seq, status, holder, checkpoint = watch.state()
        if (status != "processing" or holder not in live or checkpoint <= 0 or target.targeted[job_id] >= 2
                or watch.remaining() < 3 * segment):
            continue
        try:  # the DO itself: still this claim (no event since), with a stored checkpoint
            job = watch.probe.get(job_id)
        except (ApiError, Unavailable, httpx.HTTPError):
            return None
        if job.seq != seq or job.status != "processing" or not (job.checkpoint and job.checkpoint.frame):
            continue
        worker = live[holder]
        if kind == "kill":
            worker.kill()
        elif kind == "term":
            target.fleet.terminate(worker)
        else:
            target.spot.notify(worker.name)
        target.fleet.signalled[worker.name] = kind
        target.targeted[job_id] += 1
        log(f"{kind} {worker.name} rendering job {job_id[:8]} (checkpoint at frame {job.checkpoint.frame}, "
            f"resume_count {job.resume_count})")
        return Injection(kind, time.time(), worker=worker.name, job_id=job_id, confirm_seq=seq,
                         checkpoint_frame=job.checkpoint.frame, resume_count=job.resume_count)
    return None


def _lose_message(target: Target, log) -> Optional[Injection]:
    """Take a pending job's queue message and ack it unread: the message is lost; the job's DO must
    notice that nobody claimed the job and send another (job_state.redispatch)."""
    pending = {j for j, w in list(target.watches.items()) if w.state()[1] == "pending" and not target.targeted[j]}
    if not pending:
        return None
    queue = queue_client(target.stack)
    try:
        messages = queue.pull(batch_size=100, visibility_timeout_ms=30_000)
        victim = next((m for m in messages if m.body.get("job_id") in pending), None)
        queue.ack([victim.lease_id] if victim else [], [(m.lease_id, 0) for m in messages if m is not victim])
    except (httpx.HTTPError, RuntimeError, ValueError):
        return None
    if victim is None:
        return None
    job_id = victim.body["job_id"]
    target.targeted[job_id] += 1
    log(f"lose the queue message of pending job {job_id[:8]}")
    return Injection("lose", time.time(), job_id=job_id, effective=True, note="queue message acked unread")
