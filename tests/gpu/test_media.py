import hashlib
import shutil
from fractions import Fraction

import numpy as np
import pytest
from render_helpers import frame_md5s, frames

from gpu_worker.media import CorruptInput, Encoder, choose_codec, encoder_settings, probe, to_cfr


def test_probe_reads_size_rate_frames_and_audio(clip_av, clip_silent):
    info = probe(clip_av)
    assert (info.width, info.height, info.fps, info.frames) == (320, 180, Fraction(30), 120)
    assert info.duration == pytest.approx(4.0) and info.has_audio and not info.is_vfr
    assert not probe(clip_silent).has_audio


@pytest.mark.parametrize("fixture,reason", [
    ("not_video", "not a video"),
    ("truncated", "damaged"),
    ("empty_file", "empty"),
    ("zero_frames", "zero-length video"),
])
def test_unreadable_input_is_corrupt_with_a_reason(request, fixture, reason):
    with pytest.raises(CorruptInput, match=reason):
        probe(request.getfixturevalue(fixture))


def test_audio_only_file_has_no_video_stream(media):
    from gpu_worker.media import run_ffmpeg

    path = str(media / "tone.m4a")
    run_ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", path)
    with pytest.raises(CorruptInput, match="no video stream"):
        probe(path)


def test_vfr_is_detected_and_converted_to_cfr(clip_vfr, tmp_path):
    info = probe(clip_vfr)
    assert info.is_vfr and info.frames == 75 and info.fps == 30
    cfr = str(tmp_path / "cfr.mkv")
    to_cfr(clip_vfr, cfr, info.fps, info.audio)
    converted = probe(cfr)
    assert not converted.is_vfr and converted.frames == 90 and converted.has_audio


@pytest.mark.parametrize("start", [1, 37, 59, 60, 61, 118])
def test_decode_from_a_frame_is_frame_exact(clip_av, start):
    whole = frame_md5s(clip_av)
    part = [hashlib.md5(f.data).hexdigest() for f in frames(clip_av, start, 2)]
    assert part == whole[start : start + 2]


def test_encoder_writes_every_frame(tmp_path):
    path = str(tmp_path / "out.mp4")
    encoder = Encoder(path, encoder_settings("libx264", 64, 48, Fraction(25)))
    for i in range(10):
        encoder.write(np.full((48, 64, 3), i * 20, np.uint8))
    encoder.close()
    info = probe(path)
    assert (info.frames, info.width, info.height, info.fps) == (10, 64, 48, 25)


def test_choose_codec_falls_back_to_libx264_without_a_gpu():
    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU machine may pick h264_nvenc")
    assert choose_codec() == "libx264"


def test_ffmpeg_under_the_memory_limit_fails_instead_of_growing(tmp_path):
    from gpu_worker.media import FFmpegError, limit_ffmpeg_memory, run_ffmpeg

    limit_ffmpeg_memory(64 << 20)
    try:
        with pytest.raises(FFmpegError):
            run_ffmpeg("-f", "lavfi", "-i", "color=black:size=8192x8192:duration=0.1", "-f", "null", "-")
    finally:
        limit_ffmpeg_memory(None)
    run_ffmpeg("-f", "lavfi", "-i", "color=black:size=8192x8192:duration=0.1", "-f", "null", "-")


def test_x264_repeats_its_output(clip_av, tmp_path):
    """The same frames encode to the same bytes, run after run: a resumed job's segments are compared
    with and joined to segments another pod encoded. (x264's threaded lookahead made 1 encode in 8
    differ here.)"""
    images = frames(clip_av, 0, 60)
    settings = encoder_settings("libx264", 320, 180, Fraction(30))
    outputs = set()
    for i in range(16):
        encoder = Encoder(str(tmp_path / f"{i}.mp4"), settings)
        for image in images:
            encoder.write(image)
        encoder.close()
        outputs.add(hashlib.md5(b"".join(frame_packets(tmp_path / f"{i}.mp4"))).hexdigest())
    assert len(outputs) == 1


def frame_packets(path) -> list[bytes]:
    import av

    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]
