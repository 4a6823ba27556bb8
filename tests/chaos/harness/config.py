"""What a chaos run does: how many jobs, workers and faults, and the stack's timing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

# Segments are cut by frame count only, so that their boundaries do not depend on the machine's load.
CHECKPOINT_SECONDS = 3600
MAX_RETRIES = 3  # more signals of a kind when one landed after the render's last frame


@dataclass
class ChaosConfig:
    jobs: int = 50
    workers: int = 3
    proxied_workers: int = 1  # of `workers`, reach the control plane through the fault proxy
    kills: Optional[int] = None  # SIGKILL a worker mid-render (default: scaled to jobs)
    terms: Optional[int] = None  # SIGTERM (the spot path)
    spots: Optional[int] = None  # spot notice from the metadata endpoint
    losses: Optional[int] = None  # a pending job's queue message taken from the queue and acked unread
    restart: bool = True  # restart wrangler dev once
    upscale_jobs: int = 2  # framing jobs with realesr-animevideov3 at a tiny output size
    proxy_delay_rate: float = 0.12
    proxy_drop_rate: float = 0.06
    proxy_max_faults: Optional[int] = None
    lease_timeout_s: float = 4.0
    heartbeat_s: float = 1.0
    max_attempts: int = 8
    requeue_delay_s: float = 0.0
    redispatch_s: Optional[float] = None  # default: three lease timeouts
    checkpoint_frames: int = 15
    seed: int = 1
    workdir: Optional[Path] = None
    keep: bool = False  # keep the stack's state and logs

    def __post_init__(self):
        scale = max(1, self.jobs // 8)
        self.kills = scale if self.kills is None else self.kills
        self.terms = max(1, self.jobs // 12) if self.terms is None else self.terms
        self.spots = max(1, self.jobs // 12) if self.spots is None else self.spots
        self.losses = max(1, self.jobs // 12) if self.losses is None else self.losses
        self.redispatch_s = 3 * self.lease_timeout_s if self.redispatch_s is None else self.redispatch_s
        self.proxy_max_faults = 3 * self.jobs if self.proxy_max_faults is None else self.proxy_max_faults

    def stack_vars(self) -> dict[str, str]:
        """A short lease and many attempts: the injected faults must not exhaust a job's attempts."""
        return {"LEASE_TIMEOUT_S": str(self.lease_timeout_s), "HEARTBEAT_INTERVAL_S": str(self.heartbeat_s),
                "MAX_ATTEMPTS": str(self.max_attempts), "REQUEUE_DELAY_S": str(self.requeue_delay_s),
                "REDISPATCH_S": str(self.redispatch_s)}
