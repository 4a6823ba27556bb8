"""JobWatch: one job's event stream from its Durable Object, followed with the API client (WebSocket,
reconnected with a fresh ticket, polled while it is down) until the job is terminal. It tracks who
holds the lease according to the DO: `started` and `resumed` name the pod."""

from __future__ import annotations

import threading
from typing import Optional

from gpu_export import Client
from jobspec import JobEvent

TERMINAL = ("complete", "error", "cancelled")


class JobWatch(threading.Thread):
    def __init__(self, client: Client, job_id: str, probe: Client):
        """`probe`: the job's user's quick client, for a look at the job between faults."""
        super().__init__(name=f"watch-{job_id[:8]}", daemon=True)
        self.client, self.job_id, self.probe = client, job_id, probe
        self.lock = threading.Lock()
        self.events: list[dict] = []  # every event but snapshots, in arrival order
        self.seq, self.status, self.holder, self.checkpoint_frame = -1, "pending", None, 0
        self.total_frames = self.frame = 0
        self.error: Optional[str] = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def run(self) -> None:
        try:
            self.client.wait(self.job_id, on_event=self._seen)
        except Exception as e:  # the run ends without this job's end: verify.check_listing reports it
            self.error = f"{type(e).__name__}: {e}"

    def _seen(self, event: JobEvent) -> None:
        data = event.model_dump(mode="json")
        with self.lock:
            snapshot = event.type == "snapshot"
            if not snapshot:
                self.events.append(data)
            if event.seq != (self.seq if snapshot else self.seq + 1):  # first sight, or events missed
                self.holder = None
            job = event.job
            self.seq, self.status = event.seq, job.status
            self.checkpoint_frame = max(self.checkpoint_frame, job.checkpoint.frame if job.checkpoint else 0)
            self.total_frames = job.total_frames or self.total_frames
            self.frame = max(self.frame, job.frame)
            if event.type in ("started", "resumed"):
                self.holder = event.pod_id
            elif self.status != "processing":
                self.holder = None

    def state(self) -> tuple[int, str, Optional[str], int]:
        with self.lock:
            return self.seq, self.status, self.holder, self.checkpoint_frame

    def remaining(self) -> int:
        """Frames the render has yet to reach, as far as the DO knows (its progress reports)."""
        with self.lock:
            return self.total_frames - max(self.frame, self.checkpoint_frame)

    def by_seq(self) -> dict[int, dict]:
        with self.lock:
            return {e["seq"]: e for e in self.events}

    def completes(self) -> int:
        with self.lock:
            return sum(e["type"] == "complete" for e in self.events)


def claim_end(events: dict[int, dict], after_seq: int) -> Optional[dict]:
    """The event that ended the claim that was current at `after_seq` (requeued, complete, error,
    cancelled, or a later claim), or None if the DO's stream has a gap before it."""
    seq = after_seq + 1
    while seq in events:
        if events[seq]["type"] in ("requeued", "started", "resumed") + TERMINAL:
            return events[seq]
        seq += 1
    return None
