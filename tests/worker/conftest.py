"""The GPU worker against the real thing: a local stack (wrangler dev: control plane, queue, R2) with
short leases, real ffmpeg, and the worker CLI run as a subprocess, exactly as a pod runs it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from gpu_worker.media import probe
from gpu_worker.storage import R2, R2CheckpointStore

from scripts.gpu_worker_proc import GpuWorker, r2_config
from scripts.localstack import LocalStack

from ..clips import FPS, make_clip
from ..metadata import MetadataServer

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


class User:
    def __init__(self, stack: LocalStack):
        self.http = httpx.Client(base_url=stack.url, timeout=30)
        token = self.http.post("/api/auth/anonymous").json()["token"]
        self.http.headers["authorization"] = f"Bearer {token}"

    def upload(self, data: bytes, name: str = "clip.mp4") -> str:
        r = self.http.post("/api/videos/upload-url",
                           json={"filename": name, "content_type": "video/mp4", "size_bytes": len(data)})
        assert r.status_code == 200, r.text
        put = httpx.put(r.json()["upload_url"], content=data, headers=r.json()["headers"])
        assert put.status_code == 200, put.text
        return r.json()["video_key"]

    def export(self, clip: Path | bytes) -> str:
        """Upload the clip and create an overlay job on it; the job id."""
        key = self.upload(clip if isinstance(clip, bytes) else clip.read_bytes())
        r = self.http.post("/api/jobs", json={"type": "overlay", "input_video_key": key, "params": {
            "highlight_regions": [{"keyframes": [{"t": 0, "x": 0.5, "y": 0.5, "rx": 0.2, "ry": 0.2},
                                                 {"t": 3, "x": 0.3, "y": 0.6, "rx": 0.1, "ry": 0.2}]}]}})
        assert r.status_code == 202, r.text
        return r.json()["job_id"]

    def job(self, job_id: str) -> dict:
        r = self.http.get(f"/api/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def wait(self, job_id: str, condition, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while not condition(job := self.job(job_id)):
            assert time.monotonic() < deadline, f"job still {job['status']} after {timeout} s: {job}"
            time.sleep(0.1)
        return job

    def output_frames(self, job_id: str, path: Path) -> int:
        r = self.http.get(f"/api/jobs/{job_id}/download")
        assert r.status_code == 200, r.text
        video = httpx.get(r.json()["url"], timeout=30)
        assert video.status_code == 200
        path.write_bytes(video.content)
        return probe(str(path)).frames


@pytest.fixture
def user(stack) -> User:
    return User(stack)


def has_checkpoint(job: dict) -> bool:
    return bool(job["checkpoint"] and job["checkpoint"]["frame"] > 0)


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
