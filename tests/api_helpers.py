"""What tests of a running stack do again and again through its APIs: an upload that passes for a
video, an overlay job on it, the error of a call that must be refused, and a pod claiming a job."""

from __future__ import annotations

import pytest

from gpu_export import ApiError
from gpu_worker.control import ControlPlane
from jobspec import ClaimGrant

MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def video_bytes(body: bytes) -> bytes:
    """An upload the control plane takes for a video (it starts like an MP4) with `body` after the
    header: enough for API tests; a pod's probe would find it damaged."""
    return MP4_HEAD + body


def overlay_job(key: str) -> dict:
    """An overlay job on the upload `key` (one region, moving)."""
    return {"type": "overlay", "input_video_key": key, "params": {"highlight_regions": [
        {"keyframes": [{"t": 0, "x": 0.5, "y": 0.5, "rx": 0.2, "ry": 0.2},
                       {"t": 2, "x": 0.6, "y": 0.4, "rx": 0.2, "ry": 0.2, "easing": "ease_in_out"}]}]}}


def refusal(call, *args, **kwargs) -> ApiError:
    """The ApiError of a client call the API must refuse (its status, error, reason and the response)."""
    with pytest.raises(ApiError) as refused:
        call(*args, **kwargs)
    return refused.value


def pod(stack, name: str) -> ControlPlane:
    """The pod API of `stack` as the pod `name` calls it (the worker secret; quick retries)."""
    return ControlPlane(stack.url, stack.vars["WORKER_SECRET"], pod_id=name, attempts=2, backoff_s=0.1)


def claim(stack, job_id: str, name: str) -> tuple[ControlPlane, ClaimGrant]:
    """The pod `name` claims the job, straight from the pod API (its queue message stays); the pod and
    its grant."""
    control = pod(stack, name)
    grant = control.claim(job_id)
    assert isinstance(grant, ClaimGrant), grant
    return control, grant
