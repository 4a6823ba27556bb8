"""render(): a job spec and local input files in, the output MP4 out, resumable at any frame.

Three stages overlap: a reader thread decodes ahead (libavcodec in this process; ffmpeg for an HDR
tone map), this thread runs the processors, and each segment's encoder has its own writer thread
(raw frames -> an ffmpeg process). Frames that no processor changes are not copied on the way.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Literal, Optional

from jobspec import CheckpointManifest, FramingJob, MultiClipJob, OverlayJob

from .limits import Limits, timed_out
from .media import CorruptInput, FFmpegProcess, choose_codec, decode, encoder_settings, limit_ffmpeg_memory
from .mux import Soundtrack, mux, start_soundtrack
from .plan import ClipPlan, RenderPlan, make_plan
from .segments import CheckpointStore, SegmentWriter, concat_input, resume, video_codec_args

BATCH = 4  # frames per process() call: lets an upscaler batch on the GPU
PROGRESS_EVERY_S = 1.0

StopRequest = Optional[Literal["cancel", "interrupt"]]


class Interrupted(Exception):
    """The render stopped on request after storing a checkpoint; resume from `frame`."""

    def __init__(self, frame: int):
        super().__init__(f"interrupted at frame {frame}")
        self.frame = frame


class Cancelled(Exception):
    """The render stopped on request; nothing more was stored."""


def _ignore(*args) -> None:
    return None


@dataclass
class Hooks:
    on_progress: Callable[[int, int, float], None] = _ignore  # (frame, total, fps), about once a second
    on_checkpoint: Callable[[CheckpointManifest], None] = _ignore  # after each stored manifest
    on_resumed: Callable[[int], None] = _ignore  # (first frame to render) when resuming
    should_stop: Callable[[], StopRequest] = _ignore  # polled once before each frame is encoded


@dataclass(frozen=True)
class RenderResult:
    path: str
    frames: int
    width: int
    height: int
    codec: str
    resumed_from: int


def render(spec: OverlayJob | FramingJob | MultiClipJob, inputs: dict[str, str], workdir: str,
           store: CheckpointStore, hooks: Optional[Hooks] = None, *, job_id: str = "local", pod_id: str = "",
           codec: Optional[str] = None, quality: Optional[int] = None, segment_frames: int = 300,
           segment_seconds: float = 30.0, upscaler_factory: Optional[Callable] = None,
           limits: Limits = Limits()) -> RenderResult:
    """Render `spec` into workdir/output.mp4, continuing from the checkpoint in `store` if any.

    inputs maps each input key of the spec to a local file. codec defaults to choose_codec(),
    quality to that codec's default. Raises Interrupted or Cancelled when hooks.should_stop()
    asks, CorruptInput when an input can never be rendered, LimitExceeded when the job is over
    one of `limits` or runs past its time limit."""
    hooks = hooks or Hooks()
    started = time.monotonic()
    os.makedirs(workdir, exist_ok=True)
    limit_ffmpeg_memory(limits.ffmpeg_memory_bytes)
    plan = make_plan(spec, inputs, workdir, upscaler_factory, limits)
    settings = encoder_settings(codec or choose_codec(), plan.width, plan.height, plan.fps, quality)
    segment_dir = os.path.join(workdir, "segments")
    manifest = resume(store, segment_dir, job_id, plan.total_frames, settings, segment_frames)
    resumed_from = manifest.frame
    if resumed_from:
        hooks.on_resumed(resumed_from)
    queue_frames = limits.queue_frames(plan.frame_bytes())
    writer = SegmentWriter(store, segment_dir, manifest, settings, segment_frames, segment_seconds,
                           hooks.on_checkpoint, pod_id, plan.fmt, queue_frames)
    audio, soundtrack = _soundtrack(plan, workdir)
    deadline = _Deadline(started, limits.time_limit_s(plan.work_s))
    try:
        _encode(plan, writer, hooks, queue_frames, deadline)
        if audio:
            audio.wait()
    except BaseException:
        if audio:
            audio.kill()
        raise
    out = os.path.join(workdir, "output.mp4")
    mux(concat_input(manifest, segment_dir), video_codec_args(manifest, settings), out,
        soundtrack, plan.chapters(), plan.fps, manifest.frame)
    return RenderResult(out, manifest.frame, plan.width, plan.height, settings.codec, resumed_from)


def _soundtrack(plan: RenderPlan, workdir: str) -> tuple[Optional[FFmpegProcess], Optional[Soundtrack]]:
    """The source's audio to copy, or an encode of the clips' audio started alongside the video."""
    copied = plan.copied_audio()
    if copied:
        return None, copied
    path = os.path.join(workdir, "soundtrack.m4a")
    encoding = start_soundtrack([c.audio() for c in plan.clips], path)
    return encoding, Soundtrack(path) if encoding else None


def _encode(plan: RenderPlan, writer: SegmentWriter, hooks: Hooks, queue_frames: int, deadline: "_Deadline") -> None:
    """Process and encode frames from writer.frame to the end; the last segment is stored too."""
    progress = _Progress(hooks.on_progress, plan.total_frames, writer.frame)
    frames = _Prefetch(_source_frames(plan, writer.frame), queue_frames)
    try:
        for batch in _batches(frames, BATCH):
            clip = batch[0][0]
            images = clip.processor.process([image for _, _, image in batch], [clip.time(n) for _, n, _ in batch])
            for image in images:
                deadline.check()
                _obey(hooks.should_stop(), writer)
                writer.write(image)
                progress.update(writer.frame)
        writer.checkpoint()
        progress.update(writer.frame, force=True)
    except BaseException:
        writer.abort()
        raise
    finally:
        frames.close()


def _obey(request: StopRequest, writer: SegmentWriter) -> None:
    if request == "interrupt":
        writer.checkpoint()
        raise Interrupted(writer.frame)
    if request == "cancel":
        raise Cancelled()


def _source_frames(plan: RenderPlan, start: int) -> Iterator[tuple[ClipPlan, int, object]]:
    """(clip, frame number within the clip, image) for every output frame from `start` on."""
    clip_start = 0
    for i, clip in enumerate(plan.clips):
        skip = max(start - clip_start, 0)
        clip_start += clip.frames
        if skip >= clip.frames:
            continue
        n = skip
        for image in decode(clip.source, clip.info, clip.first + skip, clip.frames - skip, plan.fmt):
            yield clip, n, image
            n += 1
        if n < clip.frames:
            raise CorruptInput(f"clip {i + 1}: the video ends after {n} of its {clip.frames} frames")


def _batches(items: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    """Consecutive items of the same clip, at most `size` at a time."""
    batch: list[tuple] = []
    for item in items:
        if batch and (len(batch) == size or item[0] is not batch[0][0]):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


class _Prefetch:
    """Runs an iterator in a thread up to `depth` items ahead; its exceptions reach the reader."""

    _END = object()

    def __init__(self, iterator: Iterator, depth: int = 8):
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iterator,), name="prefetch", daemon=True)
        self._thread.start()

    def _run(self, iterator: Iterator) -> None:
        try:
            for item in iterator:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as e:
            self._put(_Failure(e))
        finally:
            getattr(iterator, "close", _ignore)()  # in this thread: a generator must close where it runs

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def __iter__(self) -> Iterator:
        while (item := self._queue.get()) is not self._END:
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class _Failure:
    error: BaseException


@dataclass
class _Deadline:
    started: float
    limit_s: float

    def check(self) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed > self.limit_s:
            raise timed_out(elapsed, self.limit_s)


class _Progress:
    def __init__(self, report: Callable[[int, int, float], None], total: int, start: int):
        self.report, self.total, self.start = report, total, start
        self.t0 = self.last = time.monotonic()

    def update(self, frame: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            self.report(frame, self.total, (frame - self.start) / max(now - self.t0, 1e-9))
