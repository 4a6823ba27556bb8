"""The client and its command line against a real local stack with one GPU worker rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_export import Client
from scripts.gpu_worker_proc import GpuWorker
from scripts.localstack import LocalStack

from ..clips import make_clip

OVERLAY = {"highlight_regions": [{"keyframes": [{"t": 0, "x": 0.5, "y": 0.5, "rx": 0.2, "ry": 0.2},
                                                {"t": 1, "x": 0.3, "y": 0.6, "rx": 0.1, "ry": 0.2}]}]}


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with LocalStack(persist_dir=tmp_path_factory.mktemp("client-stack"),
                    vars={"MULTIPART_THRESHOLD_BYTES": str(8 << 20)}) as s:
        worker = GpuWorker(s, tmp_path_factory.mktemp("client-worker"), "client-pod")
        yield s
        worker.stop()


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("client-clips") / "clip.mp4", 1.5)


@pytest.fixture
def api(stack, client_for) -> Client:
    return client_for(stack)
