"""Small generated inputs (testsrc2 picture, sine audio), made once per test session."""

import av
import pytest

from gpu_worker.media import run_ffmpeg


def make_clip(path, size="320x180", rate=30, seconds=4, audio=True, video_filter=None):
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    if video_filter:
        args += ["-vf", video_filter, "-fps_mode", "vfr"]
    run_ffmpeg(*args, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path))
    return str(path)


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_av(media):
    """320x180, 30 fps, 4 s (120 frames), with audio."""
    return make_clip(media / "av.mp4")


@pytest.fixture(scope="session")
def clip_silent(media):
    """256x144, 25 fps, 3 s (75 frames), no audio."""
    return make_clip(media / "silent.mp4", size="256x144", rate=25, seconds=3, audio=False)


@pytest.fixture(scope="session")
def clip_vfr(media):
    """3 s at 30 fps with frames 30-44 dropped: 75 frames and a 0.5 s gap, with audio."""
    return make_clip(media / "vfr.mp4", seconds=3, video_filter="select='not(between(n,30,44))'")


@pytest.fixture(scope="session")
def not_video(media):
    path = media / "readme.txt"
    path.write_text("hello, I am not a video\n" * 100)
    return str(path)


@pytest.fixture(scope="session")
def truncated(media, clip_av):
    """The first half of an mp4 whose index (moov) is at the end."""
    data = open(clip_av, "rb").read()
    path = media / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    return str(path)


@pytest.fixture(scope="session")
def empty_file(media):
    path = media / "empty.mp4"
    path.write_bytes(b"")
    return str(path)


@pytest.fixture(scope="session")
def zero_frames(media):
    """A Matroska file with a video track and no frames."""
    path = str(media / "zero.mkv")
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
        for packet in stream.encode(None):
            container.mux(packet)
    return path
