"""Video files in and out: probing, frame-exact raw decoding and encoding through ffmpeg pipes.

Frames are uint8 numpy arrays: HxWx3 BGR, or I420 where no processor needs BGR (FrameFormat).
ffmpeg runs as a subprocess; its stderr always goes
to a temporary file (an unread stderr PIPE can fill up and deadlock the process).
"""

from __future__ import annotations

import functools
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import numpy as np
from jobspec import EncoderSettings

from .errors import FatalJobError

# Containers we accept (ffmpeg demuxer names). ffmpeg opens much else, text files included.
VIDEO_CONTAINERS = {"mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "asf", "ogg"}
MAX_CFR_RATE = 120  # a "guessed" rate above this is a timestamp artefact, not a frame rate

# ffmpeg's names for the common colour tags (libavutil's enum values); others stay untagged
COLOR_TAGS = {
    "colorspace": {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"},
    "color_primaries": {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020"},
    "color_trc": {1: "bt709", 6: "smpte170m", 13: "iec61966-2-1", 14: "bt2020-10", 16: "smpte2084", 18: "arib-std-b67"},
}


class CorruptInput(FatalJobError):
    """The input can never be rendered (retrying will not help); the message says why."""


class FFmpegError(RuntimeError):
    """ffmpeg failed; possibly transient (disk full, killed process), so worth a retry."""


@functools.cache
def ffmpeg_exe() -> str:
    """$FFMPEG, else the static build of imageio-ffmpeg, else ffmpeg on PATH."""
    if os.environ.get("FFMPEG"):
        return os.environ["FFMPEG"]
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        exe = shutil.which("ffmpeg")
        if not exe:
            raise FFmpegError("no ffmpeg found: set FFMPEG or install imageio-ffmpeg") from None
        return exe


def ffmpeg_cmd(*args: str) -> list[str]:
    return [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]


class FFmpegProcess:
    """ffmpeg running in the background; wait() raises FFmpegError with its last error lines."""

    def __init__(self, *args: str, stdin=None, stdout=subprocess.DEVNULL):
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(ffmpeg_cmd(*args), stdin=stdin, stdout=stdout, stderr=self._log)

    def wait(self) -> None:
        with self._log:
            if self.proc.wait() != 0:
                self._log.seek(0)
                tail = self._log.read()[-2000:].decode(errors="replace").strip()
                raise FFmpegError(f"ffmpeg exited with {self.proc.returncode}: {tail or 'no message'}")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()


def run_ffmpeg(*args: str) -> None:
    FFmpegProcess(*args).wait()


# ---------------------------------------------------------------- probing


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    has_audio: bool
    is_vfr: bool
    start: float  # first video frame, in seconds after the file's start (what ffmpeg -ss counts from)
    color: tuple[tuple[str, str], ...] = ()  # known colour tags: (ffmpeg option, value)
    i420: bool = False  # 8-bit 4:2:0, limited range: decodes to I420 with no conversion


def probe(path: str) -> VideoInfo:
    """Read the container and every video packet header (no decoding). CorruptInput if unusable."""
    with _open_container(path) as container:
        stream = _video_stream(container)
        pts = _frame_pts(container, stream)
        times = [(p - pts[0]) * stream.time_base for p in pts]
        fps, is_vfr = _frame_rate(stream, times)
        container_start = Fraction(container.start_time or 0, av.time_base)
        return VideoInfo(
            width=stream.width,
            height=stream.height,
            fps=fps,
            frames=len(pts),
            duration=float(times[-1] + 1 / fps),  # the last frame lasts one frame period
            has_audio=bool(container.streams.audio),
            is_vfr=is_vfr,
            start=float(max(pts[0] * stream.time_base - container_start, 0)),
            color=_color_tags(stream.codec_context),
            i420=stream.codec_context.pix_fmt == "yuv420p" and stream.codec_context.color_range != 2,  # 2: full
        )


def _open_container(path: str):
    if os.path.getsize(path) == 0:
        raise CorruptInput("input file is empty")
    try:
        container = av.open(path)
    except av.EOFError:
        raise CorruptInput("zero-length video: the file ends before its first frame") from None
    except av.FFmpegError as e:
        raise CorruptInput(f"input is not a video, or it is damaged ({e.strerror})") from None
    if not VIDEO_CONTAINERS & set(container.format.name.split(",")):
        kind = container.format.long_name
        container.close()
        raise CorruptInput(f"input is not a video (it reads as {kind})")
    return container


def _video_stream(container):
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        raise CorruptInput("input has no video stream")
    if not videos[0].width or not videos[0].height:
        raise CorruptInput("input video has no frame size")
    return videos[0]


def _frame_pts(container, stream) -> list[int]:
    """Presentation times of the frames, sorted."""
    try:
        pts = sorted(p.pts for p in container.demux(stream) if p.size and p.pts is not None and not p.is_discard)
    except av.FFmpegError as e:
        raise CorruptInput(f"input video is damaged ({e.strerror})") from None
    if not pts:
        raise CorruptInput("zero-length video")
    return pts


def _color_tags(codec_context) -> tuple[tuple[str, str], ...]:
    tags = ((option, names.get(getattr(codec_context, option, 0))) for option, names in COLOR_TAGS.items())
    return tuple((option, name) for option, name in tags if name)


def _frame_rate(stream, times: list[Fraction]) -> tuple[Fraction, bool]:
    """The stream's rate, and whether it is variable: CFR means frame i is shown at i / rate,
    to within half a frame (so a time-based seek lands on frame i)."""
    rate = stream.guessed_rate
    if not rate or rate > MAX_CFR_RATE:
        rate = stream.average_rate
    if not rate:
        raise CorruptInput("input video has no frame rate")
    rate = Fraction(rate).limit_denominator(1001)
    is_vfr = any(round(t * rate) != i for i, t in enumerate(times))
    return rate, is_vfr


def to_cfr(src: str, dst: str, fps: Fraction) -> None:
    """Re-time src to a constant `fps` (duplicating/dropping frames as needed) so that frame N
    is well defined. Near-lossless video; audio copied (dst should be .mkv, which takes any codec)."""
    part = dst + ".part.mkv"
    run_ffmpeg("-i", src, "-map", "0:v:0", "-map", "0:a:0?", "-vf", f"fps={fps}",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "12", "-c:a", "copy", part)
    os.replace(part, dst)


# ---------------------------------------------------------------- raw frames


@dataclass(frozen=True)
class FrameFormat:
    """How raw frames travel between ffmpeg and Python.

    bgr24: HxWx3 arrays; the encoder converts them to BT.709 YUV.
    yuv420p: I420 as one (H*3/2)xW array (Y, then U, then V; even sizes only), the source's YUV
    values untouched: no colour conversion either way, and the output gets the source's tags."""

    pix_fmt: str = "bgr24"
    color: tuple[tuple[str, str], ...] = ()

    def shape(self, width: int, height: int) -> tuple[int, ...]:
        return (height, width, 3) if self.pix_fmt == "bgr24" else (height * 3 // 2, width)

    def encoder_args(self) -> list[str]:
        """Output options that turn frames of this format into tagged yuv420p."""
        if self.pix_fmt == "bgr24":
            return ["-vf", "scale=out_color_matrix=bt709:out_range=tv",
                    "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"]
        return [arg for option, value in self.color for arg in (f"-{option}", value)]


BGR = FrameFormat()


def i420_planes(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of an I420 frame."""
    quarter = height // 4
    return (frame[:height], frame[height : height + quarter].reshape(height // 2, width // 2),
            frame[height + quarter :].reshape(height // 2, width // 2))


# ---------------------------------------------------------------- decoding


def decode(path: str, info: VideoInfo, start: int = 0, count: int | None = None,
           fmt: FrameFormat = BGR) -> Iterator[np.ndarray]:
    """Frames [start, start + count) of a CFR video, exactly: the seek goes to half a frame before
    frame `start`, and ffmpeg's accurate seek drops everything earlier. Each frame is a new array.
    Ends early only if the file does; an ffmpeg failure raises FFmpegError."""
    args = []
    if start:
        args += ["-ss", f"{info.start + (start - 0.5) / info.fps:.6f}"]
    args += ["-i", path, "-map", "0:v:0", "-fps_mode", "passthrough"]
    if count is not None:
        args += ["-frames:v", str(count)]
    args += ["-f", "rawvideo", "-pix_fmt", fmt.pix_fmt, "pipe:1"]
    shape = fmt.shape(info.width, info.height)
    ffmpeg = FFmpegProcess(*args, stdout=subprocess.PIPE)
    try:
        while (frame := _read_frame(ffmpeg.proc.stdout, shape)) is not None:
            yield frame
    except BaseException:  # includes GeneratorExit: the reader stopped early
        ffmpeg.kill()
        raise
    finally:
        ffmpeg.proc.stdout.close()
    ffmpeg.wait()


def _read_frame(pipe, shape) -> np.ndarray | None:
    frame = np.empty(shape, np.uint8)
    view, got = memoryview(frame).cast("B"), 0
    while got < len(view):
        n = pipe.readinto(view[got:])
        if not n:
            return None
        got += n
    return frame


# ---------------------------------------------------------------- encoding


def encoder_settings(codec: str, width: int, height: int, fps: Fraction, quality: int | None = None) -> EncoderSettings:
    """Our standard settings per codec (quality: crf for libx264, cq for nvenc)."""
    default_quality, preset = {"libx264": (20, "veryfast"), "h264_nvenc": (21, "p4")}[codec]
    return EncoderSettings(codec=codec, width=width, height=height, fps_num=fps.numerator,
                           fps_den=fps.denominator, quality=default_quality if quality is None else quality,
                           preset=preset)


def encoder_args(s: EncoderSettings) -> list[str]:
    """Output options of an H.264 yuv420p encode with these settings."""
    if s.codec == "libx264":
        codec = ["-c:v", "libx264", "-preset", s.preset, "-crf", str(s.quality)]
    else:
        codec = ["-c:v", "h264_nvenc", "-preset", s.preset, "-tune", "hq", "-rc", "vbr", "-cq", str(s.quality), "-b:v", "0"]
    return codec + ["-pix_fmt", "yuv420p"]


class Encoder:
    """An ffmpeg encoder fed raw frames. write() only queues the frame: a writer thread pipes it
    to ffmpeg, so encoding overlaps the caller's work. close() finishes the file."""

    def __init__(self, path: str, settings: EncoderSettings, fmt: FrameFormat = BGR, queue_size: int = 8):
        size = f"{settings.width}x{settings.height}"
        rate = f"{settings.fps_num}/{settings.fps_den}"
        self._ffmpeg = FFmpegProcess("-f", "rawvideo", "-pix_fmt", fmt.pix_fmt, "-s", size, "-r", rate, "-i", "pipe:0",
                                     *encoder_args(settings), *fmt.encoder_args(), "-an", path, stdin=subprocess.PIPE)
        self._pipe = self._ffmpeg.proc.stdin
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._pipe_frames, name="encoder-writer", daemon=True)
        self._thread.start()

    def _pipe_frames(self) -> None:
        while (frame := self._queue.get()) is not None:
            if self._error is None:  # after a failure, keep draining so write() never blocks
                try:
                    self._pipe.write(np.ascontiguousarray(frame).data)
                except OSError as e:
                    self._error = e

    def write(self, frame: np.ndarray) -> None:
        if self._error is not None:
            self.abort()
            raise FFmpegError(f"encoder died: {self._error}")
        self._queue.put(frame)

    def close(self) -> None:
        self._stop_writer()
        try:
            self._pipe.close()
        except OSError:
            pass
        self._ffmpeg.wait()
        if self._error is not None:
            raise FFmpegError(f"encoder stopped reading frames: {self._error}")

    def abort(self) -> None:
        """Stop now and leave an unusable file (may be called more than once)."""
        self._ffmpeg.kill()
        self._stop_writer()

    def _stop_writer(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


@functools.cache
def choose_codec() -> str:
    """h264_nvenc if a one-frame test encode with it works on this machine, else libx264."""
    try:
        run_ffmpeg("-f", "lavfi", "-i", "color=black:s=256x144:d=0.1", "-frames:v", "1",
                   "-c:v", "h264_nvenc", "-f", "null", "-")
        return "h264_nvenc"
    except FFmpegError:
        return "libx264"
