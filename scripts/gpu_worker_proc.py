"""Run the GPU worker CLI (`python -m gpu_worker`) against a local stack, configured through the
environment exactly as a pod is. Shared by `make dev` and the test fixtures (stdlib only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "gpu-export-videos"


def r2_config(stack):
    """The stack's bucket for gpu_worker.storage.R2, configured as a pod's is."""
    from gpu_worker.storage import R2Config  # here, not at the top: the rest of this module is stdlib only

    return R2Config(stack.r2_s3_endpoint, BUCKET, stack.vars["R2_ACCESS_KEY_ID"], stack.vars["R2_SECRET_ACCESS_KEY"])


def queue_client(stack):
    """The stack's job queue, pulled with the pod's token as a pod's gpu_worker.queue_client does."""
    from gpu_worker.queue_client import QueueClient  # not at the top, as in r2_config

    return QueueClient(stack.pull_base, "local", "gpu-jobs", stack.vars["QUEUE_PULL_TOKEN"])


def worker_env(stack, workdir: Path, name: str) -> dict[str, str]:
    """The environment of a pod named `name` that renders for `stack` (a localstack.LocalStack)."""
    options = {"API_URL": stack.url, "SECRET": stack.vars["WORKER_SECRET"], "QUEUE_API": stack.pull_base,
               "ACCOUNT_ID": "local", "QUEUE_ID": "gpu-jobs", "QUEUE_TOKEN": stack.vars["QUEUE_PULL_TOKEN"],
               "R2_ENDPOINT": stack.r2_s3_endpoint, "R2_BUCKET": BUCKET,
               "R2_ACCESS_KEY_ID": stack.vars["R2_ACCESS_KEY_ID"],
               "R2_SECRET_ACCESS_KEY": stack.vars["R2_SECRET_ACCESS_KEY"],
               "WORKDIR": str(workdir / name), "POD_ID": name}
    return {**os.environ, **{f"GPU_WORKER_{option}": value for option, value in options.items()}}


class GpuWorker:
    """One `python -m gpu_worker [args]` process; its log (JSON lines) in workdir/<name>.log."""

    def __init__(self, stack, workdir: Path, name: str, *args: str):
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gpu_worker", *args], cwd=ROOT,
                                         env=worker_env(stack, workdir, name), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log = self.log_path.read_text()[-3000:]
            raise AssertionError(f"worker {self.name} still running after {timeout} s:\n{log}") from None

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, grace_s: float = 20) -> None:
        """SIGTERM (the worker checkpoints and hands its job back), SIGKILL if it does not exit."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def lines(self) -> list[dict]:
        """The log, one JSON object per line (stderr is not a terminal here). A last line without its
        newline is still being written: it is left out."""
        complete = self.log_path.read_bytes().split(b"\n")[:-1]
        return [json.loads(line) for line in complete if line.startswith(b"{")]

    def messages(self) -> list[str]:
        return [line["msg"] for line in self.lines()]
