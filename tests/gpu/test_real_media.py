"""Exports of what phones, cameras and editors really produce: every output decodes, comes out the
way a player shows the input, with the expected frames and duration, audio in sync within a frame."""

from fractions import Fraction

import av
import numpy as np
import pytest
from jobspec import JOB_SPEC
from phone_clips import (
    BEEP_HZ,
    ORIENTATIONS,
    audio_samples,
    beep_times,
    dominant_hz,
    encode,
    flash_beep,
    flash_times,
    hdr,
    several_audio_tracks,
    shown_frames,
    pattern_clip,
    upright,
    with_display_matrix,
)
from render_helpers import KEY_A, KEY_B, LOSSLESS, StopAt, frame_md5s, overlay_job, region, render_job

from gpu_worker.media import probe
from gpu_worker.render import Interrupted

OFF_CENTRE = [region(0.25, 0.3, y=0.3, rx=0.15, ry=0.1, t1=1.0)]  # a wrong turn or flip moves it


def framing_job(key=KEY_A, width=64, height=96):
    return JOB_SPEC.validate_python({"type": "framing", "input_video_key": key, "params": {
        "crop_keyframes": [{"t": 0, "x": 0.0, "y": 0.0, "w": 0.5, "h": 0.5}, {"t": 1, "x": 0.3, "y": 0.1, "w": 0.5, "h": 0.5}],
        "output_width": width, "output_height": height, "upscale_model": "none"}})


def multi_clip_job(*clips, **params):
    return JOB_SPEC.validate_python({"type": "multi_clip", "params": {"clips": list(clips), **params}})


def probed_size(path):
    info = probe(path)
    return info.width, info.height


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """160x96, 30 frames, with audio."""
    return pattern_clip(tmp_path_factory.mktemp("phone") / "base.mp4")


def assert_sync(path, fps):
    """Every flash has its beep within one frame, and every beep its flash."""
    flashes, beeps = flash_times(path), beep_times(path)
    assert flashes and len(flashes) == len(beeps), (flashes, beeps)
    worst = max(abs(f - b) for f, b in zip(flashes, beeps))
    assert worst <= 1 / fps + 1e-3, (flashes, beeps)


def assert_duration(path, frames, fps):
    info = probe(path)
    assert info.frames == frames and info.fps == fps
    with av.open(path) as c:
        assert float(c.duration / av.time_base) == pytest.approx(frames / fps, abs=1.5 / fps)


# ---------------------------------------------------------------- phone portrait videos


@pytest.mark.parametrize("name,options", ORIENTATIONS, ids=[o[0] for o in ORIENTATIONS])
def test_every_export_of_a_phone_video_is_upright_as_a_player_shows_it(name, options, base, tmp_path):
    phone = with_display_matrix(base, tmp_path / "phone.mp4", options)
    shown = upright(phone, tmp_path / "shown.mp4")  # ffmpeg's autorotate, no matrix left
    turned = name.startswith(("rot90", "rot270"))
    assert probed_size(phone) == ((96, 160) if turned else (160, 96)) == probed_size(shown)

    jobs = {"overlay": overlay_job(regions=OFF_CENTRE), "framing": framing_job(),
            "multi_clip": multi_clip_job({"input_video_key": KEY_A, "start_s": 0.2, "overlay": {"highlight_regions": OFF_CENTRE}},
                                         {"input_video_key": KEY_B, "end_s": 0.5})}
    for kind, spec in jobs.items():
        ours = render_job(spec, {KEY_A: phone, KEY_B: base}, tmp_path / kind / "a", tmp_path / kind / "sa", quality=LOSSLESS)
        want = render_job(spec, {KEY_A: shown, KEY_B: base}, tmp_path / kind / "b", tmp_path / kind / "sb", quality=LOSSLESS)
        assert (ours.width, ours.height) == (want.width, want.height), kind
        assert frame_md5s(ours.path) == frame_md5s(want.path), kind


# ---------------------------------------------------------------- HDR


REFERENCE_TONE_MAP = ("zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,"
                      "zscale=t=bt709:m=bt709:r=tv,format=yuv420p")


def rgb_frame(path, filters=None, size=(160, 96)):
    import subprocess

    from gpu_worker.media import ffmpeg_exe

    args = [ffmpeg_exe(), "-v", "error", "-i", path, "-frames:v", "1"]
    if filters:
        args += ["-vf", filters + ",scale=in_color_matrix=bt709:in_range=tv"]
    else:
        args += ["-vf", "scale=in_color_matrix=bt709:in_range=tv"]
    raw = subprocess.run([*args, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(size[1], size[0], 3).astype(float)


@pytest.mark.parametrize("transfer", ["smpte2084", "arib-std-b67"])
def test_hdr_is_tone_mapped_to_sdr_and_tagged_bt709(transfer, tmp_path):
    src = hdr(tmp_path / "hdr.mp4", transfer)
    result = render_job(multi_clip_job({"input_video_key": KEY_A}), {KEY_A: src}, tmp_path / "w", tmp_path / "s")
    with av.open(result.path) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.pix_fmt, cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range) == ("yuv420p", 1, 1, 1, 1)
    ours, reference, naive = rgb_frame(result.path), rgb_frame(src, REFERENCE_TONE_MAP), rgb_frame(src)
    luma = np.array([0.2126, 0.7152, 0.0722])
    assert abs((ours @ luma).mean() - (reference @ luma).mean()) < 4

    def patch(image, x, y):
        return image[y - 4 : y + 4, x - 4 : x + 4].mean((0, 1))

    for x, y in ((30, 20), (75, 20), (130, 20), (80, 80)):  # grey, green and blue bars, a grey in the bottom row
        assert np.abs(patch(ours, x, y) - patch(reference, x, y)).max() < 8, (x, y)
    assert np.abs(patch(naive, 75, 20) - patch(reference, 75, 20)).max() > 30  # untreated: a washed-out green


# ---------------------------------------------------------------- containers and timing


@pytest.mark.parametrize("kind", ["edit list", "start offset", "mpegts"])
def test_start_times_and_edit_lists_keep_every_frame_and_the_sync(kind, tmp_path):
    clip = flash_beep(tmp_path / "fb.mp4")
    src = {"edit list": lambda: encode(tmp_path / "cut.mp4", "-ss", "0.7", "-i", clip, "-c", "copy"),
           "start offset": lambda: encode(tmp_path / "late.mp4", "-i", clip, "-c", "copy", "-output_ts_offset", "3.2"),
           "mpegts": lambda: encode(tmp_path / "cam.ts", "-i", clip, "-c", "copy")}[kind]()
    shown = len(shown_frames(src, (160, 96)))
    result = render_job(overlay_job(regions=OFF_CENTRE), {KEY_A: src}, tmp_path / "w", tmp_path / "s")
    assert result.frames == shown
    assert_duration(result.path, shown, 30)
    assert_sync(result.path, 30)


@pytest.mark.parametrize("size,rate", [("161x97", 30), ("160x96", 50), ("160x96", 60), ("100x160", 25)])
def test_odd_sizes_and_high_rates(size, rate, tmp_path):
    src = pattern_clip(tmp_path / "in.mp4", size=size, rate=rate, seconds=0.6)
    w, h = (int(v) for v in size.split("x"))
    result = render_job(overlay_job(regions=OFF_CENTRE), {KEY_A: src}, tmp_path / "w", tmp_path / "s")
    assert (result.width, result.height) == (w - w % 2, h - h % 2)
    assert_duration(result.path, round(0.6 * rate), rate)


def test_the_default_audio_track_is_the_one_used(tmp_path):
    src = several_audio_tracks(tmp_path / "tracks.mp4")
    for kind, spec in {"whole": overlay_job(), "trimmed": multi_clip_job({"input_video_key": KEY_A, "start_s": 0.2})}.items():
        result = render_job(spec, {KEY_A: src}, tmp_path / kind / "w", tmp_path / kind / "s")
        with av.open(result.path) as c:
            assert len(c.streams.audio) == 1, kind
        assert dominant_hz(*audio_samples(result.path)) == pytest.approx(BEEP_HZ, abs=20), kind


@pytest.mark.parametrize("layout,channels", [("mono", 1), ("stereo", 2), ("5.1", 6)])
def test_audio_is_copied_without_generation_loss_when_nothing_cuts_it(layout, channels, tmp_path):
    src = pattern_clip(tmp_path / "in.mp4", audio=layout)
    result = render_job(overlay_job(), {KEY_A: src}, tmp_path / "w", tmp_path / "s")
    with av.open(src) as a, av.open(result.path) as b:
        assert b.streams.audio[0].codec_context.channels == channels
        assert [bytes(p) for p in b.demux(audio=0) if p.size] == [bytes(p) for p in a.demux(audio=0) if p.size]


def test_trims_and_joins_re_encode_the_audio_in_sync(tmp_path):
    mono = flash_beep(tmp_path / "mono.mp4", extra=("-ac", "1"))
    surround = flash_beep(tmp_path / "surround.mp4", rate=30, extra=("-af", "aformat=channel_layouts=5.1"))
    spec = multi_clip_job({"input_video_key": KEY_A, "start_s": 0.3, "end_s": 1.4},
                          {"input_video_key": KEY_B, "start_s": 0.55, "end_s": 1.8,
                           "overlay": {"highlight_regions": OFF_CENTRE}})
    inputs = {KEY_A: mono, KEY_B: surround}
    whole = render_job(spec, inputs, tmp_path / "a", tmp_path / "sa", segment_frames=20)
    assert_duration(whole.path, 33 + 38, 30)
    assert_sync(whole.path, 30)
    with av.open(whole.path) as c:
        assert c.streams.audio[0].codec_context.channels == 2

    with pytest.raises(Interrupted):  # a resume mid-segment, in the second clip
        render_job(spec, inputs, tmp_path / "b", tmp_path / "sb", StopAt(45).hooks(), segment_frames=20)
    resumed = render_job(spec, inputs, tmp_path / "c", tmp_path / "sb", segment_frames=20)
    assert resumed.resumed_from == 45
    assert_duration(resumed.path, 33 + 38, 30)
    assert_sync(resumed.path, 30)


def test_a_1080p_clip_exports_every_frame_in_sync(tmp_path):
    src = flash_beep(tmp_path / "hd.mp4", size="1920x1080", seconds=1.5)
    result = render_job(overlay_job(regions=OFF_CENTRE), {KEY_A: src}, tmp_path / "w", tmp_path / "s")
    assert (result.width, result.height) == (1920, 1080)
    assert_duration(result.path, 45, 30)
    assert_sync(result.path, 30)


@pytest.mark.slow
def test_a_90_second_1080p_clip_exports_every_frame_in_sync(tmp_path):
    src = flash_beep(tmp_path / "long.mp4", size="1920x1080", seconds=90)
    result = render_job(overlay_job(regions=OFF_CENTRE), {KEY_A: src}, tmp_path / "w", tmp_path / "s")
    assert_duration(result.path, 2700, 30)
    assert_sync(result.path, 30)


def test_probe_reports_the_shown_size_and_rate(base, tmp_path):
    phone = with_display_matrix(base, tmp_path / "p.mp4", ["-display_rotation", "270"])
    info = probe(phone)
    assert (info.width, info.height, info.fps, info.frames) == (96, 160, Fraction(30), 30)
