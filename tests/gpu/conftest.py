"""Small generated inputs (testsrc2 picture, sine audio), made once per test session."""

import av
import pytest

from tests.clips import make_clip


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_av(media):
    """320x180, 30 fps, 4 s (120 frames), with audio."""
    return str(make_clip(media / "av.mp4", 4, size="320x180", preset="veryfast"))


@pytest.fixture(scope="session")
def clip_silent(media):
    """256x144, 25 fps, 3 s (75 frames), no audio."""
    return str(make_clip(media / "silent.mp4", 3, fps=25, audio=False, preset="veryfast"))


@pytest.fixture(scope="session")
def clip_vfr(media):
    """3 s at 30 fps with frames 30-44 dropped: 75 frames and a 0.5 s gap, with audio."""
    return str(make_clip(media / "vfr.mp4", 3, "select='not(between(n,30,44))'", size="320x180", preset="veryfast"))


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
