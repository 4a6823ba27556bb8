"""The page's editor maths (workers/public, plain JS run by Node) against the GPU worker's Python on the
same inputs: keyframe easing, the spotlight's pixels, the framing crop's source rectangle, and the job
specs the editor builds, validated by the shared schema. The live preview is only as faithful as these."""

from __future__ import annotations

import json
import random
import subprocess
from types import SimpleNamespace

import av
import numpy as np
import pytest

from gpu_worker.keyframes import EASINGS, interpolate
from gpu_worker.processors.overlay import OverlayProcessor
from jobspec import JOB_SPEC, OverlayParams
from scripts.localstack import NODE_BIN, ROOT

SCRIPT = ROOT / "tests/unit/editor_maths.mjs"

pytestmark = pytest.mark.skipif(not (NODE_BIN / "node").exists(), reason="needs the project's Node (scripts/setup.sh)")


def js(op: str, **args):
    out = subprocess.run([str(NODE_BIN / "node"), str(SCRIPT)], input=json.dumps({"op": op, **args}),
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def random_keyframes(rng: random.Random, fields: list[str], n: int) -> list[dict]:
    times = sorted(rng.sample(range(1, 400), n))
    return [{"t": t / 37, "easing": rng.choice(sorted(EASINGS)), **{f: rng.random() for f in fields}} for t in times]


def test_interpolation_matches_the_worker():
    rng = random.Random(7)
    for n in (1, 2, 5):
        kfs = random_keyframes(rng, ["x", "y"], n)
        times = [kfs[0]["t"] - 1, *(k["t"] for k in kfs), *(rng.uniform(0, 12) for _ in range(50)), kfs[-1]["t"] + 1]
        ours = js("interpolate", keyframes=kfs, times=times, fields=["x", "y"])
        worker = [interpolate([SimpleNamespace(**k) for k in kfs], t, ["x", "y"]) for t in times]
        assert [pytest.approx(w, abs=1e-12) for w in worker] == ours


def random_regions(rng: random.Random) -> list[dict]:
    """One to three regions with their own dim and feather, some reaching past the frame's edge."""
    def keyframe(t, easing):
        return {"t": t, "x": rng.random(), "y": rng.random(), "rx": rng.uniform(0.02, 0.6), "ry": rng.uniform(0.02, 0.6),
                "easing": easing}
    return [{"keyframes": [keyframe(0, "ease_in_out"), keyframe(2, "linear")], "dim": rng.uniform(0, 1),
             "feather": rng.choice([0, 0.01, 0.05, 0.3])} for _ in range(rng.randint(1, 3))]


def assert_same_pixels(ours: np.ndarray, worker: np.ndarray) -> None:
    diff = np.abs(ours.astype(int) - worker.astype(int))
    assert diff.max() <= 1, f"{(diff > 1).sum()} values differ by more than rounding"
    assert (diff > 0).mean() < 0.01


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_spotlight_rgb_pixels_match_the_worker(seed):
    rng = random.Random(seed)
    width, height, regions, t = 64, 36, random_regions(rng), rng.uniform(0, 2)
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    ours = js("spotlight", width=width, height=height, rgb=rgb.ravel().tolist(), regions=regions, t=t)
    frame = rgb[:, :, ::-1].copy()  # the worker's BGR path
    OverlayProcessor(OverlayParams(highlight_regions=regions), width, height).spotlight(frame, t)
    assert_same_pixels(np.array(ours, np.uint8).reshape(height, width, 3), frame[:, :, ::-1])


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_spotlight_i420_samples_match_the_worker(seed):
    """The worker's I420 path: luma per pixel from 16, chroma per 2x2 block from 128."""
    rng = random.Random(seed)
    width, height, regions, t = 64, 36, random_regions(rng), rng.uniform(0, 2)
    i420 = np.random.default_rng(seed).integers(16, 236, (height * 3 // 2, width), dtype=np.uint8)
    ours = js("spotlightI420", width=width, height=height, i420=i420.ravel().tolist(), regions=regions, t=t)
    decoded = av.VideoFrame.from_ndarray(i420, format="yuv420p")  # what the worker's decoder hands it
    frame = OverlayProcessor(OverlayParams(highlight_regions=regions), width, height).spotlight(decoded, t)
    assert_same_pixels(np.array(ours, np.uint8).reshape(i420.shape), frame.to_ndarray())


def test_crop_source_rectangle_is_the_workers():
    """cv2.getRectSubPix reads a whole-pixel size (Python's round) around the crop's exact centre."""
    crops = [{"x": 0.1, "y": 0.2, "w": 0.3164, "h": 0.8}, {"x": 0, "y": 0, "w": 81.5 / 256, "h": 1},
             {"x": 0.5, "y": 0.25, "w": 82.5 / 256, "h": 0.5}]
    rects = js("sourceRect", crops=crops, width=256, height=144)
    for c, r in zip(crops, rects):
        size = (max(1, round(c["w"] * 256)), max(1, round(c["h"] * 144)))
        centre = ((c["x"] + c["w"] / 2) * 256, (c["y"] + c["h"] / 2) * 144)
        assert (r["width"], r["height"]) == size
        assert (r["left"] + r["width"] / 2, r["top"] + r["height"] / 2) == pytest.approx(centre)


def test_crops_keep_the_output_aspect_and_the_frame():
    aspect = 1080 / 1920
    crops = [{"x": 0.9, "y": 0, "w": 0.3, "h": 1}, {"x": 0, "y": 0.5, "w": 0.1, "h": 0.2}]
    for c in js("fitCrop", crops=crops, aspect=aspect, width=256, height=144) + js(
            "resizeCrop", crops=crops, w=0.9, aspect=aspect, width=256, height=144):
        assert (c["w"] * 256) / (c["h"] * 144) == pytest.approx(aspect)
        assert 0 <= c["x"] and c["x"] + c["w"] <= 1 + 1e-12 and 0 <= c["y"] and c["y"] + c["h"] <= 1 + 1e-12


def test_keyframe_editing():
    out = js("tracks")
    assert out["log"] == [1, 1, 1, 1, True, True, False]
    assert out["moved"] == [{"t": 0, "x": 0, "easing": "ease_in"}, {"t": pytest.approx(0.9), "x": 5, "easing": "ease_in"},
                            {"t": 1, "x": 2, "easing": "ease_in"}]
    assert out["kfs"] == [{"t": 1, "x": 2, "easing": "ease_in"}]


def test_editor_specs_are_jobs_the_schema_accepts():
    out = js("specs")
    overlay, framing, reel = (JOB_SPEC.validate_python(out[k]) for k in ("overlay", "framing", "reel"))
    assert len(overlay.params.highlight_regions) == 2
    assert [k.t for k in overlay.params.highlight_regions[0].keyframes] == [0, 1 / 30]
    assert framing.params.crop_keyframes[0].x + framing.params.crop_keyframes[0].w <= 1
    assert [(c.start_s, c.end_s, c.title) for c in reel.params.clips] == [(0.5, 1.5, ""), (1, None, "Second")]
    assert reel.params.clips[0].overlay and reel.params.clips[1].framing and not reel.params.clips[1].overlay
    assert out["problems"] == ["Add at least one clip (set its in and out points with the playhead).",
                               "Clip 2: The crop is not placed yet: load the video first."]
    assert out["length"] == pytest.approx(1 + 2)
