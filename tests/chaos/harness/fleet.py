"""Fleet: the chaos run's GPU worker processes. A dead one is replaced in the same slot (direct, or
behind the fault proxy); each polls its own spot-notice URL on the metadata server."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

from scripts.gpu_worker_proc import GpuWorker
from scripts.localstack import LocalStack

from ...metadata import MetadataServer
from .config import CHECKPOINT_SECONDS, ChaosConfig
from .proxy import FaultProxy


class Fleet:
    def __init__(self, stack: LocalStack, workdir: Path, cfg: ChaosConfig, proxy: FaultProxy, spot: MetadataServer):
        self.stack, self.workdir, self.cfg, self.proxy, self.spot = stack, workdir, cfg, proxy, spot
        self.slots: list[Optional[GpuWorker]] = [None] * cfg.workers
        self.every: list[GpuWorker] = []
        self.signalled: dict[str, str] = {}  # worker name -> what was done to it
        self.exits: dict[str, int] = {}
        self.spawned: dict[str, float] = {}
        self.stopping = False
        self._startup: list[float] = []
        self._terminated: set[str] = set()
        for slot in range(cfg.workers):
            self._start(slot)

    def _start(self, slot: int) -> None:
        behind_proxy = slot < self.cfg.proxied_workers
        name = f"pod-{len(self.every) + 1:02d}{'-proxied' if behind_proxy else ''}"
        args = ["--checkpoint-frames", str(self.cfg.checkpoint_frames), "--checkpoint-seconds", str(CHECKPOINT_SECONDS),
                "--spot-metadata-url", self.spot.url_for(name), "--spot-poll-seconds", "0.2"]
        if behind_proxy:
            args += ["--api-url", self.proxy.url]
        self.spawned[name] = time.time()
        worker = GpuWorker(self.stack, self.workdir, name, *args)
        self.slots[slot] = worker
        self.every.append(worker)

    def supervise(self) -> None:
        """Replace the workers that exited."""
        for slot, worker in enumerate(self.slots):
            if worker is not None and worker.proc.poll() is not None:
                self.exits[worker.name] = worker.proc.returncode
                self.slots[slot] = None
                if not self.stopping:
                    self._start(slot)

    def startup_s(self) -> float:
        """Spawn to "worker started", measured on the first workers (30 s until one has started)."""
        if len(self._startup) < len(self.every[:3]):
            self._startup = []
            for worker in self.every[:3]:
                started = next((line["ts"] for line in worker.lines() if line.get("msg") == "worker started"), None)
                if started is not None:
                    self._startup.append(started - self.spawned[worker.name])
        return max(self._startup) if self._startup else 30.0

    def live(self) -> list[GpuWorker]:
        """Running workers nothing was done to yet."""
        return [w for w in self.slots if w is not None and w.proc.poll() is None and w.name not in self.signalled]

    def terminate(self, worker: GpuWorker) -> None:
        """SIGTERM, once: a second one ends a worker at once (as a pod's), before it cleans up."""
        if worker.name not in self._terminated:
            self._terminated.add(worker.name)
            worker.signal(signal.SIGTERM)

    def stop(self, grace_s: float) -> None:
        """SIGTERM every worker, SIGKILL those still running after grace_s."""
        self.stopping = True
        for worker in self.slots:
            if worker is not None and worker.proc.poll() is None:
                self.terminate(worker)
        deadline = time.monotonic() + grace_s
        for worker in self.every:
            try:
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
            self.exits.setdefault(worker.name, worker.proc.returncode)

    def log_lines(self) -> dict[str, list[dict]]:
        return {worker.name: worker.lines() for worker in self.every}
