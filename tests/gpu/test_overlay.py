import av
import cv2
import numpy as np
import pytest
from jobspec import JOB_SPEC, OverlayParams
from render_helpers import KEY_A, KEY_B, frames, overlay_job, region, render_job

from gpu_worker.media import i420_planes, probe
from gpu_worker.plan import make_plan
from gpu_worker.processors.overlay import OverlayProcessor

W, H = 320, 180


def spotlight(regions, t=0.0, value=200):
    frame = np.full((H, W, 3), value, np.uint8)
    OverlayProcessor(OverlayParams(highlight_regions=regions), W, H).process([frame], [t])
    return frame[:, :, 0].astype(int)


def test_inside_kept_outside_dimmed_and_a_soft_edge():
    circle = region(0.5, 0.5, rx=45 / W, ry=45 / H, dim=0.6, feather=0.1)  # r = 45 px
    out = spotlight([circle])
    assert out[90, 160] == 200 and out[0, 0] == 80
    row = out[90, 160:]  # from the centre to the right edge
    assert np.all(np.diff(row) <= 0)
    assert row[44] == 200 and row[45 + 18] == 80  # the soft edge: 0.1 x 180 px = 18 px
    assert 80 < row[45 + 9] < 200


def test_the_ellipse_follows_its_keyframes():
    moving = [region(0.25, 0.75, rx=0.1, ry=0.2, t1=2.0, feather=0)]
    assert spotlight(moving, t=0)[90, 80] == 200 and spotlight(moving, t=0)[90, 240] == 80
    assert spotlight(moving, t=1)[90, 160] == 200 and spotlight(moving, t=1)[90, 80] == 80
    assert spotlight(moving, t=5)[90, 240] == 200


def test_each_region_is_bright_and_the_background_takes_the_smallest_dim():
    out = spotlight([region(0.2, 0.2, rx=0.1, ry=0.1, dim=0.5), region(0.8, 0.8, y=0.8, rx=0.1, ry=0.1, dim=0.9)])
    assert out[90, 64] == 200 and out[144, 256] == 200 and out[20, 160] == 100


def patch(image, cx, cy, r=16):
    return image[cy - r : cy + r, cx - r : cx + r].astype(float)


def test_overlay_render_dims_outside_the_moving_ellipse(clip_av, tmp_path):
    """Output vs input, decoded, at the first and the last frame: the spotlight moves from
    x = 0.3 to x = 0.7 of the width (keyframes at 0 s and 4 s)."""
    result = render_job(overlay_job(), {KEY_A: clip_av}, tmp_path / "work", tmp_path / "store")
    info = probe(result.path)
    assert (info.width, info.height, info.frames, info.has_audio) == (W, H, 120, True)
    assert result.frames == 120
    for n in (0, 119):
        src, out = frames(clip_av, n, 1)[0], frames(result.path, n, 1)[0]
        centre = round((0.3 + 0.4 * n / 30 / 4) * W)
        far = 270 if centre < W / 2 else 50
        inside, outside = (patch(out, c, 90) / patch(src, c, 90).mean() for c in (centre, far))
        assert patch(out, centre, 90).mean() == pytest.approx(patch(src, centre, 90).mean(), rel=0.03)
        assert patch(out, far, 90).mean() == pytest.approx(0.4 * patch(src, far, 90).mean(), rel=0.06)
        assert np.abs(patch(out, centre, 90) - patch(src, centre, 90)).mean() < 4
        assert np.abs(patch(out, far, 90) - 0.4 * patch(src, far, 90)).mean() < 4


def test_i420_frames_are_dimmed_like_bgr_frames():
    """The fast path (I420 straight from the decoder) matches dimming in BGR."""
    ramp = np.linspace(0, 255, W, dtype=np.float32)
    bgr = np.dstack([np.tile(ramp, (H, 1)), np.tile(ramp[::-1], (H, 1)), np.full((H, W), 128, np.float32)]).astype(np.uint8)
    i420 = av.VideoFrame.from_ndarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
    processor = OverlayProcessor(OverlayParams(highlight_regions=[region(0.4, 0.4, rx=0.2, ry=0.3)]), W, H)
    bgr, i420 = processor.process([bgr, i420], [0.0, 0.0])
    via_i420 = cv2.cvtColor(i420.to_ndarray(), cv2.COLOR_YUV2BGR_I420).astype(int)
    assert np.abs(via_i420 - bgr).mean() < 1.5


def test_overlay_jobs_take_the_i420_path_and_letterboxed_clips_bgr(clip_av, clip_silent, tmp_path):
    assert make_plan(overlay_job(), {KEY_A: clip_av}, str(tmp_path)).fmt.pix_fmt == "yuv420p"
    mixed = JOB_SPEC.validate_python({"type": "multi_clip", "params": {"clips": [
        {"input_video_key": KEY_A}, {"input_video_key": KEY_B}]}})
    plan = make_plan(mixed, {KEY_A: clip_av, KEY_B: clip_silent}, str(tmp_path))
    assert plan.fmt.pix_fmt == "bgr24"  # clip_silent is 256x144: fitted to 320x180 in BGR


def reference_gain(regions, width, height, step):
    """The documented gain, per sample of a plane (every `step`-th pixel), in float64 and per pixel:
    no boxes, no skipped rectangles."""
    cols, rows = (np.arange(width // step) + 0.5) * step, (np.arange(height // step) + 0.5) * step
    gain = np.zeros((len(rows), len(cols)))
    for r in regions:
        k = r["keyframes"][0]
        rx, ry = max(k["rx"] * width, 0.5), max(k["ry"] * height, 0.5)
        band = max(r["feather"] * min(width, height) / np.sqrt(rx * ry), 1e-6)
        d = np.hypot((cols[None, :] - k["x"] * width) / rx, (rows[:, None] - k["y"] * height) / ry)
        keep = 1 - r["dim"]
        gain = np.maximum(gain, keep + (1 - keep) * np.clip((1 + band - d) / band, 0, 1))
    return gain


@pytest.mark.parametrize("regions", [
    [region(0.5, 0.5, rx=0.3, ry=0.4, feather=0.05)],
    [region(0.05, 0.05, rx=0.4, ry=0.2)],  # reaches past the frame's edges
    [region(0.3, 0.3, rx=0.1, ry=0.4, dim=0.5), region(0.35, 0.35, y=0.6, rx=0.3, ry=0.1, dim=0.8)],  # overlapping
], ids=["centred", "clipped", "overlapping"])
def test_i420_spotlight_matches_the_formula_on_every_sample(regions):
    """The fast path (a box, a copied rectangle inside the largest ellipse, strips around it) gives
    the formula's value, rounded, on every sample of every plane."""
    rng = np.random.default_rng(7)
    yuv = rng.integers(0, 256, (H * 3 // 2, W), dtype=np.uint8)
    out = OverlayProcessor(OverlayParams(highlight_regions=regions), W, H).process(
        [av.VideoFrame.from_ndarray(yuv, format="yuv420p")], [0.0])[0]
    (y, u, v), (y2, u2, v2) = (i420_planes(f) for f in (av.VideoFrame.from_ndarray(yuv, format="yuv420p"), out))
    for plane, dimmed, step, black in ((y, y2, 1, 16), (u, u2, 2, 128), (v, v2, 2, 128)):
        exact = black + (plane - float(black)) * reference_gain(regions, W, H, step)
        tie = np.abs(exact % 1 - 0.5) < 1e-3  # either rounding is right, and float32 may land on either side
        assert np.abs(dimmed - exact).max() <= 0.5 + 1e-3
        assert np.array_equal(dimmed[~tie], np.round(exact[~tie]))
