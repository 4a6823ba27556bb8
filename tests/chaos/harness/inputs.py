"""The chaos run's inputs: small generated clips, a mix of job specs over them, and an uninterrupted
reference render of each spec to compare the outputs with."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

from ...clips import make_clip
from .config import CHECKPOINT_SECONDS

# 60 fps: renders long enough for a signal to land mid-render; the picture scrolls by a pixel a frame,
# so that neighbouring frames differ (<= 33 dB PSNR apart) more than two encodes of one frame (>= 36 dB).
FPS = 60
CLIPS = ((2, 440), (3, 660), (4, 880))  # (seconds, audio Hz) of the generated inputs


def make_clips(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [make_clip(folder / f"clip{i}.mp4", seconds, "scroll=horizontal=0.004", fps=FPS, tone_hz=hz)
            for i, (seconds, hz) in enumerate(CLIPS)]


def placeholder_key(i: int) -> str:
    return f"videos/raw/chaos/clip{i}/clip{i}.mp4"


def job_specs(n: int, upscale_jobs: int, rng: random.Random) -> list[tuple[dict, int]]:
    """(spec with placeholder keys, expected frames) for n jobs of mixed types."""
    kinds = (["overlay", "framing", "multi_clip"] * n)[:n]
    rng.shuffle(kinds)
    for i in range(min(upscale_jobs, n)):
        kinds[(i * 7 + 1) % n] = "upscale"
    return [_spec(kind, rng) for kind in kinds]


def kind_of(spec: dict) -> str:
    if spec["type"] == "framing" and spec["params"]["upscale_model"] != "none":
        return "framing+esrgan"
    return spec["type"]


def with_keys(spec: dict, keys: dict[str, str]) -> dict:
    """The spec with its placeholder input keys replaced by a user's uploaded keys."""
    return json.loads(json.dumps(spec), object_hook=lambda d: {
        k: (keys.get(v, v) if k == "input_video_key" else v) for k, v in d.items()})


def render_reference(spec: dict, inputs: dict[str, str], workdir: str, segment_frames: int) -> dict:
    """An uninterrupted render of `spec` (runs in a pool process): its output and timing."""
    from gpu_worker.render import render
    from gpu_worker.segments import DirectoryStore
    from jobspec import JOB_SPEC

    started = time.monotonic()
    result = render(JOB_SPEC.validate_python(spec), inputs, os.path.join(workdir, "work"),
                    DirectoryStore(os.path.join(workdir, "store")), segment_frames=segment_frames,
                    segment_seconds=CHECKPOINT_SECONDS)
    out = os.path.join(workdir, "reference.mp4")
    shutil.move(result.path, out)
    shutil.rmtree(os.path.join(workdir, "work"), ignore_errors=True)
    shutil.rmtree(os.path.join(workdir, "store"), ignore_errors=True)
    return {"path": out, "frames": result.frames, "seconds": time.monotonic() - started}


def _region(rng: random.Random, seconds: float) -> dict:
    def kf(t):
        return {"t": t, "x": round(rng.uniform(0.25, 0.75), 3), "y": round(rng.uniform(0.25, 0.75), 3),
                "rx": round(rng.uniform(0.1, 0.3), 3), "ry": round(rng.uniform(0.1, 0.3), 3),
                "easing": rng.choice(["linear", "ease_in", "ease_out", "ease_in_out", "hold"])}
    return {"keyframes": [kf(0), kf(round(rng.uniform(0.5, 1.0) * seconds, 2))],
            "dim": round(rng.uniform(0.3, 0.8), 2)}


def _spec(kind: str, rng: random.Random) -> tuple[dict, int]:
    i = rng.randrange(len(CLIPS))
    seconds = CLIPS[i][0]
    if kind == "overlay":
        regions = [_region(rng, seconds) for _ in range(rng.choice([1, 2]))]
        return {"type": "overlay", "input_video_key": placeholder_key(i),
                "params": {"highlight_regions": regions}}, seconds * FPS
    if kind in ("framing", "upscale"):
        w = round(rng.uniform(0.3, 0.5), 3)
        crops = [{"t": 0, "x": round(rng.uniform(0, 1 - w), 3), "y": 0, "w": w, "h": 1},
                 {"t": seconds, "x": round(rng.uniform(0, 1 - w), 3), "y": 0, "w": w, "h": 1,
                  "easing": "ease_in_out"}]
        model, (out_w, out_h) = ("none", (144, 256)) if kind == "framing" else ("realesr-animevideov3", (72, 128))
        return {"type": "framing", "input_video_key": placeholder_key(i), "params": {
            "crop_keyframes": crops, "output_width": out_w, "output_height": out_h,
            "upscale_model": model}}, seconds * FPS
    clips, frames = [], 0
    for n in range(2):
        j = rng.randrange(len(CLIPS))
        start = rng.choice([0.0, 0.5, 1.0])
        end = min(CLIPS[j][0], start + rng.choice([0.8, 1.0, 1.5]))
        clip = {"input_video_key": placeholder_key(j), "start_s": start, "end_s": end, "title": f"Part {n + 1}"}
        if n == 1:
            clip["overlay"] = {"highlight_regions": [_region(rng, end)]}
        clips.append(clip)
        frames += round(end * FPS) - round(start * FPS)
    return {"type": "multi_clip", "params": {"clips": clips}}, frames
