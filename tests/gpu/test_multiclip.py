from fractions import Fraction

import av
import numpy as np
import pytest
from jobspec import JOB_SPEC
from render_helpers import KEY_A, KEY_B, LOSSLESS, StopAt, frame_md5s, overlay_job, region, render_job

from gpu_worker.media import probe
from gpu_worker.plan import frame_range
from gpu_worker.render import Interrupted

TITLES = ["Intro", "Middle = #2; \\ with odd characters", "End"]


def multi_clip_job():
    return JOB_SPEC.validate_python({"type": "multi_clip", "params": {"clips": [
        {"input_video_key": KEY_A, "start_s": 0.5, "end_s": 2.0, "title": TITLES[0],
         "overlay": {"highlight_regions": [region(0.3, 0.7)]}},
        {"input_video_key": KEY_B, "start_s": 1.0, "end_s": 2.5, "title": TITLES[1]},
        {"input_video_key": KEY_A, "start_s": 3.0, "title": TITLES[2],
         "framing": {"crop_keyframes": [{"t": 0, "x": 0.25, "y": 0, "w": 0.3, "h": 1}],
                     "output_width": 180, "output_height": 320, "upscale_model": "none"}},
    ]}})


@pytest.mark.parametrize("start,end,fps,available,expected", [
    (0.5, 2.0, 30, 120, (15, 45)),
    (0.0, None, 30, 120, (0, 120)),
    (3.0, 10.0, 30, 120, (90, 30)),  # clamped to the source
    (0.02, 0.05, 30, 120, (1, 1)),  # 0.6 -> 1, 1.5 -> 2 (round half to even)
    (5.0, 6.0, 30, 120, (120, 0)),
    (1.0, 2.0, Fraction(30000, 1001), 1000, (30, 30)),
])
def test_frame_range_rule(start, end, fps, available, expected):
    assert frame_range(start, end, Fraction(fps), available) == expected


def test_adjacent_clips_share_no_frame_and_miss_none():
    cuts = [0, 0.123, 0.5, 0.51, 1.7777, 3.3]
    ranges = [frame_range(a, b, Fraction(30000, 1001), 1000) for a, b in zip(cuts, cuts[1:])]
    assert all(f1 + n1 == f2 for (f1, n1), (f2, _) in zip(ranges, ranges[1:]))


def test_multi_clip_frames_chapters_audio_and_resume_across_clip_boundaries(clip_av, clip_silent, tmp_path):
    inputs = {KEY_A: clip_av, KEY_B: clip_silent}  # clip_silent: 25 fps, another size, no audio
    whole = render_job(multi_clip_job(), inputs, tmp_path / "a", tmp_path / "sa", quality=LOSSLESS, segment_frames=40)
    assert whole.frames == 45 + 45 + 30 and (whole.width, whole.height) == (320, 180)
    info = probe(whole.path)
    assert info.frames == 120 and info.fps == 30 and info.has_audio

    with av.open(whole.path) as c:
        chapters = [(float(ch["start"] * ch["time_base"]), float(ch["end"] * ch["time_base"]), ch["metadata"]["title"])
                    for ch in c.chapters()]
        audio = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
    assert chapters == [(0.0, 1.5, TITLES[0]), (1.5, 3.0, TITLES[1]), (3.0, 4.0, TITLES[2])]
    rms = [np.sqrt(np.mean(audio[int(a * 48000) : int(b * 48000)] ** 2)) for a, b in [(0.1, 1.4), (1.6, 2.9), (3.1, 3.9)]]
    assert rms[0] > 0.03 and rms[1] < 1e-3 and rms[2] > 0.03  # the clip without audio gets silence
    assert len(audio) / 48000 == pytest.approx(4.0, abs=0.05)

    for stop in (44, 45, 91):  # the last frame of clip 1, the first of clip 2, inside clip 3
        with pytest.raises(Interrupted):
            render_job(multi_clip_job(), inputs, tmp_path / "b", tmp_path / "sb", StopAt(stop).hooks(),
                       quality=LOSSLESS, segment_frames=40)
    resumed = render_job(multi_clip_job(), inputs, tmp_path / "b", tmp_path / "sb", quality=LOSSLESS, segment_frames=40)
    assert resumed.resumed_from == 91
    assert frame_md5s(resumed.path) == frame_md5s(whole.path)


def test_vfr_input_renders_at_a_constant_rate(clip_vfr, tmp_path):
    result = render_job(overlay_job(), {KEY_A: clip_vfr}, tmp_path / "work", tmp_path / "store")
    info = probe(result.path)
    assert result.frames == info.frames == 90 and info.fps == 30 and not info.is_vfr and info.has_audio


def test_a_vfr_input_used_by_several_clips_is_retimed_and_probed_once(clip_vfr, tmp_path, monkeypatch):
    from gpu_worker import plan as plan_module

    calls = {"to_cfr": 0, "probe": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(plan_module, "to_cfr", counted("to_cfr", plan_module.to_cfr))
    monkeypatch.setattr(plan_module, "probe", counted("probe", plan_module.probe))
    spec = JOB_SPEC.validate_python({"type": "multi_clip", "params": {"clips": [
        {"input_video_key": KEY_A, "start_s": 0, "end_s": 1},
        {"input_video_key": KEY_A, "start_s": 1, "end_s": 2},
        {"input_video_key": KEY_A, "start_s": 2},
    ]}})
    plan = plan_module.make_plan(spec, {KEY_A: clip_vfr}, str(tmp_path))
    assert calls == {"to_cfr": 1, "probe": 2}  # the input, then its re-timed copy
    assert len({c.source for c in plan.clips}) == 1 and plan.fps == 30
    assert [c.frames for c in plan.clips] == [30, 30, 30]
