"""Inputs and requests that once took a pod down (10-12 GiB, or minutes without a frame) end as a job
error that names the limit, within seconds, while the worker's memory stays under a stated bound."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ..api_helpers import overlay_job, refusal, video_bytes
from .conftest import export
from .hostile_media import big_frame_clip, huge_sps_clip, long_tiny_clip

PEAK_RSS_BOUND = 400 << 20  # the worker process and its ffmpeg children together
REFUSED_WITHIN_S = 20  # worker start (imports, queue pull, claim, download, probe) to the job's error


def framing(key: str, width: int, height: int, model: str) -> dict:
    return {"type": "framing", "input_video_key": key, "params": {
        "crop_keyframes": [{"t": 0, "x": 0.25, "y": 0.0, "w": 0.5, "h": 1.0}],
        "output_width": width, "output_height": height, "upscale_model": model}}


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) << 10
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total


class PeakRss:
    """Samples tree_rss(pid) every 20 ms in a thread until the process ends."""

    def __init__(self, proc):
        self.proc, self.peak = proc, 0
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while self.proc.poll() is None:
            self.peak = max(self.peak, tree_rss(self.proc.pid))
            time.sleep(0.02)

    def join(self) -> int:
        self._thread.join()
        return self.peak


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    return {"sps": huge_sps_clip(folder), "8k": big_frame_clip(folder), "long": long_tiny_clip(folder)}


CASES = [
    ("an SPS that claims 16000x16000", "sps", overlay_job, "max_input_pixels"),
    ("an 8192x8192 video", "8k", overlay_job, "max_input_pixels"),
    ("64x64 for ten minutes to 2160x3840 with realesrgan-x4plus", "long",
     lambda key: framing(key, 2160, 3840, "realesrgan-x4plus"), "max_work_s"),
]


@pytest.mark.parametrize("name,clip,job,limit", CASES, ids=[c[0] for c in CASES])
def test_a_job_over_the_pods_limits_fails_within_seconds_in_bounded_memory(name, clip, job, limit, hostile, user,
                                                                           start_worker):
    data = hostile[clip].read_bytes()
    job_id = user.create(job(user.upload(data))).job_id

    started = time.monotonic()
    worker = start_worker()
    peak = PeakRss(worker.proc)
    assert worker.wait(60) == 0
    took, peak = time.monotonic() - started, peak.join()

    result = user.get(job_id)
    assert result.status == "error" and result.attempts == 0, result
    assert limit in result.error, result.error
    print(f"{name}: {len(data)} bytes, refused in {took:.1f} s, worker peak RSS {peak >> 20} MiB: {result.error}")
    assert took < REFUSED_WITHIN_S, took
    assert peak < PEAK_RSS_BOUND, f"peak RSS {peak >> 20} MiB"


def test_a_render_past_its_wall_time_limit_fails_with_the_limit(user, long_clip, start_worker):
    job_id = export(user, long_clip)

    worker = start_worker("--time-limit-floor", "1", "--time-limit-factor", "0.001")

    assert worker.wait(60) == 0
    result = user.get(job_id)
    assert result.status == "error" and "time limit" in result.error, result


def test_the_control_plane_refuses_a_job_over_its_caps(user):
    """Sent with `request`: `create` would refuse these before sending them (the same schema)."""
    key = user.upload(video_bytes(bytes(1000)))
    clips = [{"input_video_key": key, "start_s": 0, "end_s": 3000}] * 3
    for spec, reason in [(framing(key, 3840, 3840, "realesrgan-x4plus"), "pixels"),
                         ({"type": "multi_clip", "params": {"clips": clips}}, "seconds")]:
        refused = refusal(user.request, "POST", "/api/jobs", json_body=spec)
        assert refused.status == 422 and reason in refused.reason, refused
