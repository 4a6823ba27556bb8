"""Video files in and out: probing, frame-exact raw decoding and encoding through ffmpeg pipes.

Frames are uint8 numpy arrays: HxWx3 BGR, or I420 where no processor needs BGR (FrameFormat).
ffmpeg runs as a subprocess; its stderr always goes
to a temporary file (an unread stderr PIPE can fill up and deadlock the process).

Frames are always the picture as a player shows it, and every size here is that picture's:
- a display matrix (a phone's portrait video is a landscape frame plus a quarter turn; editors also
  write mirrored ones) is applied by ffmpeg's autorotate while decoding, and probe() reports the
  turned size (VideoInfo.orientation keeps the matrix);
- HDR (PQ or HLG transfer, BT.2020) is tone-mapped to SDR BT.709 while decoding (TONE_MAP), so
  the output is plain H.264 8-bit that says BT.709 in its tags.
"""

from __future__ import annotations

import functools
import math
import os
import queue
import resource
import shutil
import struct
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Optional

import av
import numpy as np
from jobspec import EncoderSettings

from .errors import FatalJobError
from .limits import LimitExceeded

# Containers we accept (ffmpeg demuxer names). ffmpeg opens much else, text files included.
VIDEO_CONTAINERS = {"mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "asf", "ogg"}
MAX_CFR_RATE = 120  # a "guessed" rate above this is a timestamp artefact, not a frame rate

# ffmpeg's names for the common colour tags (libavutil's enum values); others stay untagged
COLOR_TAGS = {
    "colorspace": {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"},
    "color_primaries": {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020"},
    "color_trc": {1: "bt709", 6: "smpte170m", 13: "iec61966-2-1", 14: "bt2020-10", 16: "smpte2084", 18: "arib-std-b67"},
}


# HDR transfers (ffmpeg's names) and how they are shown in SDR: to linear light (100 nits = SDR
# white), BT.2020 primaries to BT.709, Hable's curve for the highlights, then BT.709's transfer and
# matrix, limited range (zimg does each step; ffmpeg's tonemap only the curve).
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})  # PQ, HLG
TONE_MAP = ("zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,"
            "zscale=t=bt709:m=bt709:r=tv,format=yuv420p")
BT709 = (("colorspace", "bt709"), ("color_primaries", "bt709"), ("color_trc", "bt709"))
UPRIGHT = (1, 0, 0, 1)

# Audio codecs an MP4 takes as they are: copied, not re-encoded, when nothing cuts the audio.
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac"}


# x264 without its threaded lookahead: with it, the same frames encoded to different bytes now and
# then (1 run in 8 here), and segments are compared with and joined to those of other pods. It costs
# no measurable time (10 s of 720p: 2.84-3.46 s either way).
X264 = ["-c:v", "libx264", "-x264-params", "sync-lookahead=0"]


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


_memory_limit: Optional[int] = None


def limit_ffmpeg_memory(nbytes: Optional[int]) -> None:
    """Every ffmpeg started from now on gets at most `nbytes` of address space (None: no limit):
    an input that makes ffmpeg allocate without end fails that ffmpeg, not the pod."""
    global _memory_limit
    _memory_limit = nbytes


class FFmpegProcess:
    """ffmpeg running in the background; wait() raises FFmpegError with its last error lines."""

    def __init__(self, *args: str, stdin=None, stdout=subprocess.DEVNULL):
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(ffmpeg_cmd(*args), stdin=stdin, stdout=stdout, stderr=self._log)
        if _memory_limit:  # set from outside (a preexec_fn is unsafe with threads); ffmpeg allocates after probing
            try:
                resource.prlimit(self.proc.pid, resource.RLIMIT_DATA, (_memory_limit, _memory_limit))
            except ProcessLookupError:  # already gone: wait() reports how it ended
                pass

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
class AudioTrack:
    """The audio a render uses: the first track marked default (else the first track)."""

    index: int  # among the file's audio streams (ffmpeg's a:<index>)
    codec: str
    channels: int
    start: float  # in seconds after the file's start, like VideoInfo.start


@dataclass(frozen=True)
class VideoInfo:
    width: int  # as shown: after the display matrix
    height: int
    fps: Fraction
    frames: int
    duration: float
    audio: Optional[AudioTrack]
    is_vfr: bool
    start: float  # first video frame, in seconds after the file's start (what ffmpeg -ss counts from)
    color: tuple[tuple[str, str], ...] = ()  # colour tags of the decoded frames: (ffmpeg option, value)
    i420: bool = False  # decodes to 8-bit 4:2:0, limited range, with no conversion of our own
    hdr: str = ""  # the HDR transfer ("smpte2084", "arib-std-b67") that decoding tone-maps, or ""
    orientation: tuple[int, int, int, int] = UPRIGHT  # display matrix (a, b, c, d): shown x = a x + c y, y = b x + d y

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    def video_filter(self) -> Optional[str]:
        """What decoding applies besides autorotate: the tone map of an HDR input."""
        return TONE_MAP if self.hdr else None


def probe(path: str, max_pixels: Optional[int] = None) -> VideoInfo:
    """Read the container, every video packet header and the first frame. CorruptInput if unusable;
    LimitExceeded (before any decoding) if its frame is over `max_pixels`."""
    with _open_container(path, max_pixels) as container:
        stream = _video_stream(container)
        if max_pixels and stream.width * stream.height > max_pixels:
            raise LimitExceeded(f"input video is {stream.width}x{stream.height} = {stream.width * stream.height} "
                                f"pixels a frame; the limit (max_input_pixels) is {max_pixels}")
        pts, first = _scan(container, stream)
        times = [(p - pts[0]) * stream.time_base for p in pts]
        fps, is_vfr = _frame_rate(stream, times)
        container_start = Fraction(container.start_time or 0, av.time_base)
        orientation = _orientation(first)
        quarter_turn = orientation[0] == 0
        tags = _color_tags(stream.codec_context)
        hdr = next((value for option, value in tags if option == "color_trc" and value in HDR_TRANSFERS), "")
        return VideoInfo(
            width=stream.height if quarter_turn else stream.width,
            height=stream.width if quarter_turn else stream.height,
            fps=fps,
            frames=len(pts),
            duration=float(times[-1] + 1 / fps),  # the last frame lasts one frame period
            audio=_audio_track(container, container_start),
            is_vfr=is_vfr,
            start=float(max(pts[0] * stream.time_base - container_start, 0)),
            color=BT709 if hdr else tags,
            i420=bool(hdr) or (stream.codec_context.pix_fmt == "yuv420p" and stream.codec_context.color_range != 2),
            hdr=hdr,
            orientation=orientation,
        )


def _open_container(path: str, max_pixels: Optional[int] = None):
    if os.path.getsize(path) == 0:
        raise CorruptInput("input file is empty")
    # Opening decodes a few frames to learn the stream's parameters: with max_pixels the decoder
    # refuses a frame that large instead of allocating it (the size is still read from the headers).
    options = {"max_pixels": str(max_pixels)} if max_pixels else {}
    try:
        container = av.open(path, options=options)
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


def _scan(container, stream) -> tuple[list[int], Optional[av.VideoFrame]]:
    """Presentation times of the frames shown (sorted; an edit list's hidden ones left out), and the
    first decoded frame (it carries the display matrix)."""
    pts, first = [], None
    try:
        for packet in container.demux(stream):
            if first is None and packet.size:
                first = next(iter(stream.codec_context.decode(packet)), None)
            if packet.size and packet.pts is not None and not packet.is_discard:
                pts.append(packet.pts)
        if first is None and pts:
            first = next(iter(stream.codec_context.decode(None)), None)
    except av.FFmpegError as e:
        raise CorruptInput(f"input video is damaged ({e.strerror})") from None
    if not pts:
        raise CorruptInput("zero-length video")
    return sorted(pts), first


def _orientation(frame: Optional[av.VideoFrame]) -> tuple[int, int, int, int]:
    """The display matrix's rotation/mirror part, as signs. Only quarter turns and mirrors exist in
    practice (ffmpeg's autorotate does no more either); anything else is shown unturned."""
    matrix = next((bytes(sd) for sd in (frame.side_data if frame else ()) if sd.type.name == "DISPLAYMATRIX"), None)
    if matrix is None:
        return UPRIGHT
    a, b, _, c, d = (round(v / 65536) for v in struct.unpack("<9i", matrix)[:5])
    if sorted(map(abs, (a, b, c, d))) != [0, 0, 1, 1] or (a == 0) != (d == 0):
        return UPRIGHT
    return a, b, c, d


def _audio_track(container, container_start: Fraction) -> Optional[AudioTrack]:
    tracks = list(container.streams.audio)
    if not tracks:
        return None
    chosen = next((t for t in tracks if t.disposition & av.stream.Disposition.default), tracks[0])
    start = Fraction(chosen.start_time or 0) * chosen.time_base - container_start if chosen.time_base else 0
    return AudioTrack(tracks.index(chosen), chosen.codec_context.name, chosen.codec_context.channels,
                      float(max(start, 0)))


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


def to_cfr(src: str, dst: str, fps: Fraction, audio: Optional[AudioTrack]) -> None:
    """Re-time src to a constant `fps` (duplicating/dropping frames as needed) so that frame N
    is well defined. Near-lossless video; `audio` (src's probe().audio, the default track: the
    copy has one or none) copied (dst should be .mkv, which takes any codec)."""
    part = dst + ".part.mkv"
    maps = ["-map", f"0:a:{audio.index}"] if audio else []
    run_ffmpeg("-i", src, "-map", "0:v:0", *maps, "-vf", f"fps={fps}",
               *X264, "-preset", "veryfast", "-crf", "12", "-c:a", "copy", part)
    os.replace(part, dst)


# ---------------------------------------------------------------- frames


@dataclass(frozen=True)
class FrameFormat:
    """How frames travel from the decoder through the processors to the encoder.

    bgr24: HxWx3 uint8 arrays; the encoder converts them to BT.709 YUV.
    yuv420p: the decoder's own av.VideoFrame (I420, even sizes only), its YUV values untouched: no
    colour conversion and no copy on the way (a processor that changes a frame writes a new one,
    see i420_planes), and the output gets the source's colour tags."""

    pix_fmt: str = "bgr24"
    color: tuple[tuple[str, str], ...] = ()

    def shape(self, width: int, height: int) -> tuple[int, ...]:
        """The shape of a frame as one array (what ffmpeg's raw pipe carries)."""
        return (height, width, 3) if self.pix_fmt == "bgr24" else (height * 3 // 2, width)

    def encoder_args(self) -> list[str]:
        """Output options that turn frames of this format into tagged yuv420p. The tags are set on
        the frames (setparams): ffmpeg 9's -color_* output options no longer reach x264."""
        if self.pix_fmt == "bgr24":
            return ["-vf", "scale=out_color_matrix=bt709:out_range=tv," + _setparams(BT709)]
        return ["-vf", _setparams(self.color)] if self.color else []


BGR = FrameFormat()


def _setparams(color: tuple[tuple[str, str], ...]) -> str:
    return "setparams=range=tv:" + ":".join(f"{option}={value}" for option, value in color)


def i420_planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of a yuv420p frame (each plane's row padding cut off). Write
    only into a frame you made: a decoded one may still be the decoder's reference picture."""
    return tuple(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes)


def _i420_frame(planes: tuple[np.ndarray, ...]) -> av.VideoFrame:
    frame = av.VideoFrame(planes[0].shape[1], planes[0].shape[0], "yuv420p")
    for view, plane in zip(i420_planes(frame), planes):
        view[...] = plane
    return frame


def orient(image: np.ndarray, orientation: tuple[int, int, int, int]) -> np.ndarray:
    """An image (rows first) as the display matrix shows it: x' = a x + c y, y' = b x + d y."""
    a, b, c, d = orientation
    if a == 0:  # a quarter turn: swap the axes, then mirror what the signs say
        image, (x_sign, y_sign) = image.swapaxes(0, 1), (c, b)
    else:
        x_sign, y_sign = a, d
    if x_sign < 0:
        image = image[:, ::-1]
    if y_sign < 0:
        image = image[::-1]
    return image


# ---------------------------------------------------------------- decoding


def decode(path: str, info: VideoInfo, start: int = 0, count: int | None = None,
           fmt: FrameFormat = BGR) -> Iterator[np.ndarray | av.VideoFrame]:
    """Frames [start, start + count) of a CFR video, exactly, as a player shows them: BGR arrays or
    yuv420p VideoFrames (fmt). Decoded in this process; an HDR input goes through ffmpeg for its
    tone map. Ends early only if the file does; a decoder failure raises FFmpegError."""
    frames = _decode_tone_mapped(path, info, start, count, fmt) if info.hdr else _decode(path, info, start, count, fmt)
    yield from frames


def _decode(path, info, start, count, fmt):
    """libavcodec through PyAV: a seek to the keyframe before frame `start`, then every frame shown
    before it dropped (what ffmpeg's accurate seek does), the display matrix applied here."""
    try:  # a frame larger than the probed one (a changed SPS mid-stream) is refused, not allocated
        with av.open(path, options={"max_pixels": str(info.width * info.height)}) as container:
            stream = _video_stream(container)
            stream.thread_type = "AUTO"
            base = Fraction(container.start_time or 0, av.time_base) + Fraction(info.start).limit_denominator(10**6)
            first = base + (Fraction(start) - Fraction(1, 2)) / info.fps  # frame `start` is shown after this
            if start:
                container.seek(math.floor(first / stream.time_base), stream=stream, backward=True)
            wanted = count if count is not None else info.frames
            made = 0
            for frame in container.decode(stream):
                if made == wanted:
                    break
                if start and frame.pts is not None and frame.pts * stream.time_base < first:
                    continue
                made += 1
                yield _as(frame, info.orientation, fmt)
    except av.FFmpegError as e:
        raise FFmpegError(f"decoding {os.path.basename(path)} failed: {e}") from None


def _as(frame: av.VideoFrame, orientation: tuple[int, int, int, int], fmt: FrameFormat):
    if fmt.pix_fmt == "bgr24":
        image = frame.to_ndarray(format="bgr24")
        return image if orientation == UPRIGHT else np.ascontiguousarray(orient(image, orientation))
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    if orientation == UPRIGHT:
        return frame
    return _i420_frame(tuple(orient(plane, orientation) for plane in i420_planes(frame)))


def _decode_tone_mapped(path, info, start, count, fmt):
    """ffmpeg's decoder with TONE_MAP (zimg is not in PyAV's build) and autorotate, through a pipe."""
    args = []
    if start:
        args += ["-ss", f"{info.start + (start - 0.5) / info.fps:.6f}"]
    args += ["-i", path, "-map", "0:v:0", "-fps_mode", "passthrough", "-vf", info.video_filter()]
    if count is not None:
        args += ["-frames:v", str(count)]
    args += ["-f", "rawvideo", "-pix_fmt", fmt.pix_fmt, "pipe:1"]
    shape = fmt.shape(info.width, info.height)
    ffmpeg = FFmpegProcess(*args, stdout=subprocess.PIPE)
    try:
        while (frame := _read_frame(ffmpeg.proc.stdout, shape)) is not None:
            yield frame if fmt.pix_fmt == "bgr24" else av.VideoFrame.from_ndarray(frame, format="yuv420p")
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
        codec = [*X264, "-preset", s.preset, "-crf", str(s.quality)]
    else:
        codec = ["-c:v", "h264_nvenc", "-preset", s.preset, "-tune", "hq", "-rc", "vbr", "-cq", str(s.quality), "-b:v", "0"]
    return codec + ["-pix_fmt", "yuv420p"]


class Encoder:
    """An ffmpeg encoder fed raw frames through a pipe. write() only queues the frame: a writer
    thread pipes it to ffmpeg, so encoding overlaps the caller's work. close() finishes the file.

    Encoding stays a process of its own: x264 in this process (PyAV) made segments that differed
    from run to run at the same frames, which a resume compares against; the pipe costs ≈ 1 ms a
    720p frame. A yuv420p VideoFrame's planes are written as they are (no copy unless rows are padded)."""

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
                    for data in _raw(frame):
                        self._pipe.write(data)
                except OSError as e:
                    self._error = e

    def write(self, frame: np.ndarray | av.VideoFrame) -> None:
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


def _raw(frame: np.ndarray | av.VideoFrame) -> list:
    """A frame's bytes as ffmpeg's rawvideo reads them: the array, or the Y, U and V planes."""
    if isinstance(frame, np.ndarray):
        return [np.ascontiguousarray(frame).data]
    # A plane without row padding is a C-contiguous view (no copy); a padded one is copied without it.
    return [np.ascontiguousarray(view).data for view in i420_planes(frame)]


@functools.cache
def choose_codec() -> str:
    """h264_nvenc if a one-frame test encode with it works on this machine, else libx264."""
    try:
        run_ffmpeg("-f", "lavfi", "-i", "color=black:s=256x144:d=0.1", "-frames:v", "1",
                   "-c:v", "h264_nvenc", "-f", "null", "-")
        return "h264_nvenc"
    except FFmpegError:
        return "libx264"
