"""Checkpoint storage that fails for a moment (R2 unreachable while the pod keeps rendering: the chaos
run's restart of wrangler dev) must not make a resume skip frames: a later render from the same
checkpoint still holds every frame, identical to an uninterrupted render."""

from __future__ import annotations

import hashlib
import time

import pytest

from gpu_worker.media import decode, probe, run_ffmpeg
from gpu_worker.render import Hooks, render
from gpu_worker.segments import DirectoryStore
from jobspec import JOB_SPEC

KEY = "videos/raw/usr_a/up1/a.mp4"
FRAMES = 120
SEGMENT = 15


class FailingOnce(DirectoryStore):
    """Storage that refuses one segment (the third) once, after a while: R2 while it is away, with
    the client's retries. The render goes on meanwhile, and later segments queue up behind it."""

    def __init__(self, path: str):
        super().__init__(path)
        self.failed = False

    def put_segment(self, local_path, record):
        if record.index == 2 and not self.failed:
            self.failed = True
            time.sleep(1.0)
            raise OSError("R2 unreachable")
        super().put_segment(local_path, record)


def md5s(path: str) -> list[str]:
    return [hashlib.md5(f.data).hexdigest() for f in decode(path, probe(path))]


def test_a_segment_that_failed_to_store_is_rendered_again(tmp_path):
    clip = tmp_path / "clip.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=256x144:rate=30", "-t", str(FRAMES // 30), "-c:v", "libx264",
               "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip))
    spec = JOB_SPEC.validate_python({"type": "overlay", "input_video_key": KEY, "params": {"highlight_regions": [
        {"keyframes": [{"t": 0, "x": 0.3, "y": 0.5, "rx": 0.2, "ry": 0.3}, {"t": 4, "x": 0.7, "y": 0.5, "rx": 0.2,
                                                                            "ry": 0.3}]}]}})
    inputs = {KEY: str(clip)}
    reference = render(spec, inputs, str(tmp_path / "ref"), DirectoryStore(str(tmp_path / "ref-store")),
                       codec="libx264", segment_frames=SEGMENT)

    store = FailingOnce(str(tmp_path / "store"))
    with pytest.raises(OSError, match="R2 unreachable"):  # the failed upload ends the first render
        render(spec, inputs, str(tmp_path / "first"), store, Hooks(), codec="libx264", segment_frames=SEGMENT)
    assert store.failed
    resumed = render(spec, inputs, str(tmp_path / "second"), store, codec="libx264", segment_frames=SEGMENT)

    assert resumed.frames == FRAMES and probe(resumed.path).frames == FRAMES
    assert md5s(resumed.path) == md5s(reference.path)
