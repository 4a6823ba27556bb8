"""gpu-export-worker (python -m gpu_worker): render export jobs from the queue until stopped.

SIGTERM/SIGINT or a spot notice from --spot-metadata-url: every running job stops at its next frame,
stores a checkpoint and is handed back (reported `interrupted`); then the process exits with 0.

The GPU cost report is the client's: `gpu-export cost` (gpu_export.cost).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import socket
import sys
import tempfile
from pathlib import Path

from . import logs
from .control import ControlPlane
from .limits import Limits
from .media import choose_codec
from .queue_client import QueueClient
from .runner import Runner, Settings
from .spot import MetadataPoller, StopNotice, stop_on_signals
from .storage import R2, R2Config

ENV_PREFIX = "GPU_WORKER_"
REQUIRED = ("api_url", "secret", "account_id", "queue_id", "queue_token", "r2_endpoint",
            "r2_access_key_id", "r2_secret_access_key")

log = logging.getLogger("gpu_worker")


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value
    return parse


def default_pod_id() -> str:
    return re.sub(r"[^A-Za-z0-9_.:-]", "-", f"{socket.gethostname()}-{os.getpid()}")[-128:]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpu-export-worker", description="Render GPU export jobs from the queue until stopped.",
        epilog=f"Every option can be set in the environment instead: --api-url as {env_name('--api-url')}, "
               "and so on. Pass secrets that way: a command line is visible to every user of the machine.")

    def opt(flag: str, help: str, **kw) -> None:
        env = os.environ.get(env_name(flag))
        if env is not None:
            kw["default"] = env.lower() in ("1", "true", "yes") if kw.get("action") == "store_true" else env
        if "dest" in kw and kw.get("action") != "store_true":  # --help names the value after the option
            kw["metavar"] = flag.lstrip("-").replace("-", "_").upper()
        p.add_argument(flag, help=f"{help} [{env_name(flag)}]", **kw)

    opt("--api-url", "control plane base URL, e.g. https://export.example.com")
    opt("--secret", "WORKER_SECRET shared with the control plane (signs pod requests)")
    opt("--queue-api", "Cloudflare Queues REST base", default="https://api.cloudflare.com/client/v4")
    opt("--account-id", "Cloudflare account id")
    opt("--queue-id", "id of the gpu-jobs queue")
    opt("--queue-token", "API token with Queues Edit")
    opt("--r2-endpoint", "R2 S3 endpoint, https://<account id>.r2.cloudflarestorage.com")
    opt("--r2-bucket", "R2 bucket", default="gpu-export-videos")
    opt("--r2-access-key-id", "R2 access key id")
    opt("--r2-secret-access-key", "R2 secret access key")
    opt("--pod-id", "this worker's name in the control plane", default=default_pod_id())
    opt("--once", "work on one job (per slot), then exit", action="store_true")
    opt("--concurrency", "jobs rendered in parallel", type=positive(int), default=1)
    opt("--spot-metadata-url", "poll this metadata URL for a spot interruption notice")
    opt("--spot-poll-seconds", "metadata poll interval", type=positive(float), default=5.0)
    opt("--workdir", "scratch space for inputs, segments and outputs",
        default=os.path.join(tempfile.gettempdir(), "gpu-worker"))
    opt("--checkpoint-frames", "frames per checkpoint segment", type=positive(int), default=300)
    opt("--checkpoint-seconds", "longest wall time between checkpoints", type=positive(float), default=30.0)
    # What one job may ask of this pod (limits.py); a job over one fails for good with a reason.
    # Each option's dest is its Limits field (limits_of).
    d = Limits()
    opt("--max-input-pixels", "largest input frame (width x height)", type=positive(int), default=d.max_input_pixels)
    opt("--max-frames", "most frames in an input", type=positive(int), default=d.max_frames)
    opt("--max-work-seconds", "largest estimated work of a job, in T4 seconds", type=positive(float),
        default=d.max_work_s, dest="max_work_s")
    opt("--time-limit-floor", "a render's wall-time limit: this many seconds ...", type=positive(float),
        default=d.time_floor_s, dest="time_floor_s")
    opt("--time-limit-factor", "... plus this times its estimated work", type=positive(float), default=d.time_factor,
        dest="time_factor")
    opt("--queue-bytes", "frames held in each of a render's queues, in bytes", type=positive(int), default=d.queue_bytes)
    opt("--ffmpeg-memory-bytes", "memory (data segment) each ffmpeg process may use", type=positive(int),
        default=d.ffmpeg_memory_bytes)
    return p


def limits_of(args: argparse.Namespace) -> Limits:
    return Limits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Limits)})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    missing = [f"--{name.replace('_', '-')}" for name in REQUIRED if not getattr(args, name)]
    if missing:
        p.error("missing " + ", ".join(f"{flag} ({env_name(flag)})" for flag in missing))
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    view = logs.setup()
    notice = StopNotice()
    stop_on_signals(notice)
    if args.spot_metadata_url:
        MetadataPoller(args.spot_metadata_url, notice, args.spot_poll_seconds).start()
    runner = Runner(
        ControlPlane(args.api_url, args.secret, args.pod_id),
        QueueClient(args.queue_api, args.account_id, args.queue_id, args.queue_token),
        R2(R2Config(args.r2_endpoint, args.r2_bucket, args.r2_access_key_id, args.r2_secret_access_key)),
        Settings(Path(args.workdir), args.checkpoint_frames, args.checkpoint_seconds, args.concurrency, args.once,
                 limits_of(args)),
        notice, view)
    log.info("worker started", extra={"pod_id": args.pod_id, "concurrency": args.concurrency,
                                      "codec": choose_codec()})
    runner.run()
    log.info("worker stopped", extra={"reason": notice.reason or "done"})
    return 1 if runner.crashed else 0


if __name__ == "__main__":
    sys.exit(main())
