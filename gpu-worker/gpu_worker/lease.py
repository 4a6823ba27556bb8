"""A granted job's lease, kept from a thread of its own: heartbeats, progress and checkpoint reports.

The render never waits on the control plane: it posts what to report and goes on. The thread sends
the latest of each kind every PERIOD_S at most (so no more than 4 progress reports a second), and
a heartbeat when nothing else was sent for the grant's interval. A refused report (LeaseLost: the
job was cancelled, or the lease expired and moved on) ends the lease: `lost` says why.

Silence ends it too. The control plane takes a lease back when it has received no report for the
grant's lease timeout; so when no report sent within that long was accepted (the control plane
unreachable, or this process paused), this pod may no longer hold it either. Counting from when each
accepted report was sent keeps this pod's deadline before the control plane's. A report still on its
way when the deadline comes decides: `held()` waits for its answer (a slow control plane is not a lost
lease).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional

import httpx
from jobspec import CheckpointManifest, ClaimGrant

from .control import ControlPlane, ControlPlaneError, LeaseLost
from .logs import JobProgress

PERIOD_S = 0.25

log = logging.getLogger(__name__)


class Lease:
    def __init__(self, control: ControlPlane, grant: ClaimGrant, claimed_at: Optional[float] = None):
        """claimed_at: time.monotonic() when the claim was sent (the first accepted report)."""
        self.control, self.job_id, self.lease_id = control, grant.job_id, grant.lease_id
        self.heartbeat_s, self.timeout_s = grant.heartbeat_interval_s, grant.lease_timeout_s
        self.lost: Optional[LeaseLost] = None
        self._accepted_at = time.monotonic() if claimed_at is None else claimed_at  # latest accepted report's sending
        self._unanswered: list[float] = []  # when each report still waiting for its answer was sent
        self._answered = threading.Condition()
        self._pending: dict[str, dict] = {}  # action -> fields of its latest report
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"lease-{grant.job_id}", daemon=True)

    def __enter__(self) -> "Lease":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def progress(self, p: JobProgress) -> None:
        self._post("progress", frame=p.frame, total_frames=p.total, fps=p.fps, eta_s=p.eta_s)

    def checkpoint(self, manifest: CheckpointManifest) -> None:
        self._post("checkpoint", frame=manifest.frame, total_frames=manifest.total_frames)

    def held(self) -> bool:
        """Whether this pod still holds the lease: no report refused, and one sent within the timeout accepted."""
        with self._answered:
            while self.lost is None and (now := time.monotonic()) - self._accepted_at >= self.timeout_s:
                deciding = [sent for sent in self._unanswered if now - sent < self.timeout_s]
                if not deciding:
                    self._lose(LeaseLost(None, f"no report accepted for {self.timeout_s:g} s: the lease has expired"))
                    break
                self._answered.wait(min(deciding) + self.timeout_s - now)
            return self.lost is None

    def confirm(self) -> bool:
        """A heartbeat sent now, its answer awaited: whether the lease is still held. Before a write that must
        not happen without it (the output)."""
        self._send("heartbeat", {})
        return self.held()

    def close(self) -> None:
        """Send what is still pending, then stop (a final report comes after this)."""
        self._closing.set()
        self._thread.join()

    def report(self, action: str, **fields) -> dict:
        """A report sent now, from the caller's thread: raises LeaseLost, ControlPlaneError."""
        return self.control.report(self.job_id, action, self.lease_id, **fields)

    def _post(self, action: str, **fields) -> None:
        with self._lock:
            self._pending[action] = fields

    def _keep(self) -> None:
        quiet_since = self._accepted_at  # the claim counts as the first report
        while self.held():
            closing = self._closing.wait(PERIOD_S)
            with self._lock:
                reports, self._pending = self._pending, {}
            if not reports and time.monotonic() - quiet_since >= self.heartbeat_s:
                reports = {"heartbeat": {}}
            for action, fields in reports.items():
                started = time.monotonic()
                if self._send(action, fields):
                    quiet_since = started  # a slow answer does not delay the next heartbeat
            if closing:
                return

    def _send(self, action: str, fields: dict) -> bool:
        if not self.held():
            return False
        with self._answered:
            sent = time.monotonic()
            self._unanswered.append(sent)
        accepted = False
        try:
            self.report(action, **fields)
            accepted = True
        except LeaseLost as e:
            with self._answered:
                self._lose(e)
        except (ControlPlaneError, httpx.HTTPError) as e:
            log.warning("%s report failed: %s", action, e, extra={"job_id": self.job_id})
        finally:
            with self._answered:
                self._unanswered.remove(sent)
                if accepted:
                    self._accepted_at = max(self._accepted_at, sent)
                self._answered.notify_all()
        return accepted

    def _lose(self, why: LeaseLost) -> None:
        """The first reason the lease ended (called holding self._answered)."""
        if self.lost is None:
            self.lost = why
            log.warning("lease lost: %s", why.reason, extra={"job_id": self.job_id, "cancelled": why.cancelled})
