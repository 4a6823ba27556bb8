"""Helpers shared by the render tests."""

import hashlib

from jobspec import JOB_SPEC

from gpu_worker.media import decode, probe
from gpu_worker.render import Hooks, render
from gpu_worker.segments import DirectoryStore

KEY_A = "videos/raw/user1/up1/a.mp4"
KEY_B = "videos/raw/user1/up2/b.mp4"
LOSSLESS = 0  # crf 0: frames decode identically wherever segments were cut


def region(x0, x1, y=0.5, rx=0.2, ry=0.3, t1=4.0, dim=0.6, feather=0.02):
    """A spotlight moving from x0 (t=0) to x1 (t=t1)."""
    return {"dim": dim, "feather": feather, "keyframes": [
        {"t": 0, "x": x0, "y": y, "rx": rx, "ry": ry}, {"t": t1, "x": x1, "y": y, "rx": rx, "ry": ry}]}


def overlay_job(key=KEY_A, regions=None):
    return JOB_SPEC.validate_python({"type": "overlay", "input_video_key": key,
                                     "params": {"highlight_regions": regions or [region(0.3, 0.7)]}})


class StopAt:
    """should_stop that asks for `action` just before frame `frame` is encoded."""

    def __init__(self, frame, action="interrupt"):
        self.frame, self.action, self.next = frame, action, 0

    def hooks(self, **more):
        return Hooks(should_stop=self.poll, on_resumed=self.resumed, **more)

    def resumed(self, frame):
        self.next = frame

    def poll(self):
        hit = self.next == self.frame
        self.next += 1
        return self.action if hit else None


def render_job(spec, inputs, workdir, store_dir, hooks=None, **options):
    options.setdefault("codec", "libx264")
    return render(spec, inputs, str(workdir), DirectoryStore(str(store_dir)), hooks, **options)


def frames(path, start=0, count=None):
    return list(decode(path, probe(path), start, count))


def frame_md5s(path):
    return [hashlib.md5(f.data).hexdigest() for f in decode(path, probe(path))]
