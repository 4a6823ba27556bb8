"""The worker loop: pull a job message, claim the job, render it with checkpoints in R2, report.

A queue message only names a job; the claim decides who renders it. A granted or refused claim
acks the message; a claim that got no answer leaves it to come back after its visibility timeout.
From the grant on, the Lease keeps the job; the render's result picks the one final report
(complete, interrupted or fail). An error nobody foresaw sends none: the lease expires and the
control plane re-queues the job.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import httpx
from jobspec import (JOB_SPEC, MAX_FPS, MAX_REASON_CHARS, MAX_REPORTED_SECONDS, POD_REPORTS, ClaimGrant, error_summary,
                     input_keys)
from pydantic import ValidationError

from .control import ControlPlane, ControlPlaneError, LeaseLost, Reply
from .lease import Lease
from .logs import JobProgress, ProgressView
from .errors import FatalJobError
from .limits import Limits
from .media import FFmpegError
from .queue_client import PulledMessage, QueueClient
from .render import Cancelled, Hooks, Interrupted, render
from .spot import StopNotice
from .storage import R2, R2CheckpointStore, StorageError

# Twice a claim that uses all its retries on quick failures (7.5 s of backoff). A slower claim only
# lets the message reappear early: the control plane refuses the second claim, which acks it.
CLAIM_VISIBILITY_MS = 20_000
IDLE_WAIT_S = 1.0
TRANSIENT = (FFmpegError, OSError)  # a crashed or starved ffmpeg, a full disk

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    workdir: Path
    checkpoint_frames: int = 300
    checkpoint_seconds: float = 30.0
    concurrency: int = 1
    once: bool = False
    limits: Limits = Limits()


class Stopwatch:
    """Wall time spent inside `with` blocks."""

    seconds = 0.0

    def __enter__(self) -> "Stopwatch":
        self._start = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds += time.monotonic() - self._start


class Runner:
    def __init__(self, control: ControlPlane, queue: QueueClient, r2: R2, settings: Settings,
                 notice: StopNotice, view: ProgressView):
        self.control, self.queue, self.r2, self.settings = control, queue, r2, settings
        self.notice, self.view = notice, view
        self.crashed = False

    # ---------------------------------------------------------------- the loop

    def run(self) -> None:
        """Until the stop notice; with `once`, until each slot has worked on one job. A slot that
        crashes stops the others too (`crashed`), so that a supervisor restarts the process."""
        slots = [threading.Thread(target=self._slot, name=f"slot-{i}") for i in range(self.settings.concurrency)]
        for slot in slots:
            slot.start()
        for slot in slots:
            slot.join()

    def _slot(self) -> None:
        try:
            while not self.notice.given:
                if self.take_one():
                    if self.settings.once:
                        return
                else:
                    self.notice.wait(IDLE_WAIT_S)
        except Exception:
            log.exception("worker slot crashed")
            self.crashed = True
            self.notice.give("worker crashed")

    def take_one(self) -> bool:
        """Pull one message and act on it; whether this pod worked on a job."""
        try:
            messages = self.queue.pull(batch_size=1, visibility_timeout_ms=CLAIM_VISIBILITY_MS)
        except (httpx.HTTPError, RuntimeError, ValueError) as e:
            log.warning("queue pull failed: %s", e)
            return False
        return bool(messages) and self._handle(messages[0])

    def _handle(self, message: PulledMessage) -> bool:
        job_id = message.body.get("job_id") if isinstance(message.body, dict) else None
        if not isinstance(job_id, str):
            log.error("malformed queue message dropped", extra={"body": message.body})
            self._ack(message)
            return False
        if self.notice.given:
            self._ack(message, hand_back=True)
            return False
        claimed_at = time.monotonic()
        try:
            grant = self.control.claim(job_id)
        except ControlPlaneError as e:
            log.warning("claim failed, the message will come back: %s", e, extra={"job_id": job_id})
            return False
        if isinstance(grant, Reply):
            self._refused(message, job_id, grant)
            return False
        self._ack(message)
        self.work(grant, claimed_at)
        return True

    def _refused(self, message: PulledMessage, job_id: str, reply: Reply) -> None:
        reason = reply.body.get("reason", "")
        if reply.status in (404, 409):  # finished, leased elsewhere or gone: the message is spent
            log.info("claim refused: %s", reason, extra={"job_id": job_id})
            self._ack(message)
        else:  # our own fault (a wrong secret?): leave the message for a pod that can take it
            log.error("claim rejected (HTTP %d): %s", reply.status, reason, extra={"job_id": job_id})

    def _ack(self, message: PulledMessage, hand_back: bool = False) -> None:
        acks, retries = ([], [(message.lease_id, 0)]) if hand_back else ([message.lease_id], [])
        try:
            self.queue.ack(acks, retries)
        except (httpx.HTTPError, RuntimeError, ValueError) as e:
            log.warning("queue ack failed: %s", e)

    # ---------------------------------------------------------------- one job

    def work(self, grant: ClaimGrant, claimed_at: Optional[float] = None) -> None:
        job_id = grant.job_id
        log.info("claimed", extra={"job_id": job_id, "attempt": grant.attempt, "resume_count": grant.resume_count})
        workdir = self.settings.workdir / job_id
        clock = Stopwatch()
        try:
            with Lease(self.control, grant, claimed_at) as lease:
                # Checkpoints are stored only while the lease is held: a pod that lost it writes nothing more.
                store = R2CheckpointStore(self.r2, job_id, grant.checkpoint_prefix, may_write=lease.held)
                final = self._attempt(grant, lease, store, workdir, clock)
            if final is not None:
                self._finish(lease, store, *final, gpu_seconds=round(clock.seconds, 3))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            self.view.finish(job_id)

    def _attempt(self, grant: ClaimGrant, lease: Lease, store: R2CheckpointStore, workdir: Path,
                 clock: Stopwatch) -> Optional[tuple[str, dict]]:
        """Render and upload; the final report to send, if any."""
        try:
            spec = JOB_SPEC.validate_python(grant.spec)
            inputs = self._download(spec, workdir / "inputs")
            with clock:
                result = render(spec, inputs, str(workdir), store, self._hooks(grant.job_id, lease, store),
                                job_id=grant.job_id, pod_id=self.control.pod_id,
                                segment_frames=self.settings.checkpoint_frames,
                                segment_seconds=self.settings.checkpoint_seconds, limits=self.settings.limits)
            if not lease.confirm():  # the output is stored only by a pod the control plane still counts on
                self._cancelled(lease, store)
                return None
            size = self.r2.upload(result.path, grant.output_key, "video/mp4")  # this lease's own key
            return "complete", {"output_key": grant.output_key, "frames": result.frames, "size_bytes": size}
        except Interrupted as e:
            return "interrupted", {"frame": e.frame, "reason": (self.notice.reason or "interrupted")[:200]}
        except Cancelled:
            self._cancelled(lease, store)
            return None
        except Exception as e:
            failure = _failure(e)
            if failure is None:
                log.exception("unexpected error: the lease is left to expire", extra={"job_id": grant.job_id})
                return None
            return "fail", failure

    def _download(self, spec, folder: Path) -> dict[str, str]:
        folder.mkdir(parents=True, exist_ok=True)
        inputs = {}
        for i, key in enumerate(dict.fromkeys(input_keys(spec))):
            inputs[key] = str(folder / f"{i}_{key.rsplit('/', 1)[-1]}")
            self.r2.download(key, inputs[key])
        return inputs

    def _hooks(self, job_id: str, lease: Lease, store: R2CheckpointStore) -> Hooks:
        def on_progress(frame: int, total: int, fps: float) -> None:
            eta_s = round(min((total - frame) / fps, MAX_REPORTED_SECONDS), 1) if fps > 0 else None
            progress = JobProgress(frame, total, round(min(fps, MAX_FPS), 1), eta_s)
            lease.progress(progress)
            self.view.update(job_id, progress)

        def should_stop() -> Optional[str]:
            if not lease.held():
                return "cancel"
            return "interrupt" if self.notice.given else None

        return Hooks(on_progress=on_progress, should_stop=should_stop,
                     on_checkpoint=lease.checkpoint,
                     on_resumed=lambda frame: log.info("resuming", extra={"job_id": job_id, "from_frame": frame}))

    def _cancelled(self, lease: Lease, store: R2CheckpointStore) -> None:
        if lease.lost.cancelled:
            log.info("cancelled by the user", extra={"job_id": lease.job_id})
            self._delete_checkpoint(store)
        else:  # another pod may be rendering it by now: its checkpoint is not ours to delete
            log.warning("lease lost: job abandoned", extra={"job_id": lease.job_id})

    def _finish(self, lease: Lease, store: R2CheckpointStore, action: str, fields: dict, gpu_seconds: float) -> None:
        if not lease.held():
            log.warning("%s not reported: the lease is lost", action, extra={"job_id": lease.job_id, **fields})
            return
        if "gpu_seconds" in POD_REPORTS[action].model_fields:  # not every protocol version carries it
            fields = {**fields, "gpu_seconds": gpu_seconds}
        try:
            lease.report(action, **fields)
        except (LeaseLost, ControlPlaneError) as e:
            log.error("%s report failed: %s", action, e, extra={"job_id": lease.job_id})
            return
        log.info(action, extra={"job_id": lease.job_id, "gpu_seconds": gpu_seconds, **fields})
        if action == "complete":
            self._delete_checkpoint(store)

    def _delete_checkpoint(self, store: R2CheckpointStore) -> None:
        try:
            store.delete_all()
        except StorageError as e:
            log.warning("checkpoint not deleted: %s", e, extra={"job_id": store.job_id})


def _failure(error: Exception) -> Optional[dict]:
    """The fail report for an error, or None for one nobody foresaw."""
    if isinstance(error, ValidationError):
        reason, retryable = f"invalid job: {error_summary(error)}", False
    elif isinstance(error, FatalJobError):  # corrupt input, missing model weights
        reason, retryable = str(error), False
    elif isinstance(error, StorageError):
        reason, retryable = str(error), error.retryable
    elif isinstance(error, TRANSIENT):
        reason, retryable = f"{type(error).__name__}: {error}", True
    else:
        return None
    return {"reason": reason[:MAX_REASON_CHARS] or type(error).__name__, "retryable": retryable}
