"""The GPU worker against the real thing: a local stack (wrangler dev: control plane, queue, R2) with
short leases, real ffmpeg, and the worker CLI run as a subprocess, exactly as a pod runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_export import Client
from gpu_worker.media import probe
from gpu_worker.storage import R2, R2CheckpointStore
from jobspec import JobView

from scripts.gpu_worker_proc import GpuWorker, r2_config
from scripts.localstack import LocalStack

from ..api_helpers import overlay_job
from ..clips import FPS, make_clip
from ..metadata import MetadataServer
from ..polling import wait_until

STACK_VARS = {"LEASE_TIMEOUT_S": "4", "HEARTBEAT_INTERVAL_S": "1", "REQUEUE_DELAY_S": "0", "MAX_ATTEMPTS": "3"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with LocalStack(persist_dir=tmp_path_factory.mktemp("worker-stack"), vars=dict(STACK_VARS)) as s:
        yield s


@pytest.fixture(scope="session")
def r2(stack) -> R2:
    return R2(r2_config(stack))


def checkpoint_of(r2: R2, job_id: str) -> R2CheckpointStore:
    return R2CheckpointStore(r2, job_id, f"checkpoints/{job_id}/")


# ---------------------------------------------------------------- input videos


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory) -> Path:
    """4 s: 120 frames."""
    return make_clip(tmp_path_factory.mktemp("clips") / "short.mp4", 4)


LONG_CLIP_FRAMES = 60 * FPS


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory) -> Path:
    """60 s: a render of a few seconds, long enough to stop it half way."""
    return make_clip(tmp_path_factory.mktemp("clips") / "long.mp4", LONG_CLIP_FRAMES // FPS)


# ---------------------------------------------------------------- a user of the public API

@pytest.fixture
def user(stack, client_for) -> Client:
    return client_for(stack)


def export(user: Client, clip: Path | bytes) -> str:
    """Upload the clip and create an overlay job on it; the job id."""
    return user.create(overlay_job(user.upload(clip))).job_id


def has_checkpoint(job: JobView) -> bool:
    return bool(job.checkpoint and job.checkpoint.frame > 0)


def wait_for_checkpoint(user: Client, job_id: str, timeout: float = 60) -> None:
    wait_until(lambda: has_checkpoint(user.get(job_id)), timeout, f"a checkpoint of job {job_id}", interval=0.1)


def output_frames(user: Client, job_id: str, path: Path) -> int:
    """The frames of the job's output, downloaded to `path`."""
    return probe(str(user.download(job_id, path))).frames


# ---------------------------------------------------------------- the worker process


class Worker(GpuWorker):
    """`python -m gpu_worker --once`, configured through the environment as in a pod."""

    def __init__(self, stack: LocalStack, workdir: Path, name: str, *args: str):
        super().__init__(stack, workdir, name, "--once", *args)


@pytest.fixture
def start_worker(stack, tmp_path):
    workers: list[Worker] = []

    def start(*args: str) -> Worker:
        workers.append(Worker(stack, tmp_path, f"pod-{len(workers) + 1}", *args))
        return workers[-1]

    yield start
    for w in workers:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


# ---------------------------------------------------------------- a cloud metadata endpoint


@pytest.fixture
def metadata():
    server = MetadataServer(token=None)
    yield server
    server.stop()
