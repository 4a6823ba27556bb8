"""What to render: a job spec turned into clips of source frames, each with its processor.

Every job is a list of clips (an overlay or framing job is one clip: the whole input), rendered
one after the other into one stream of output frames numbered from 0.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional

from jobspec import Clip, FramingJob, MultiClipJob, OverlayJob

from .limits import Limits, work_seconds
from .media import BGR, MP4_AUDIO, CorruptInput, FrameFormat, VideoInfo, probe, to_cfr
from .mux import Chapter, ClipAudio, Soundtrack
from .processors import Chain, PassThrough, Processor, make_processor, pix_fmts
from .processors.fit import Fit


@dataclass
class ClipPlan:
    source: str  # a constant-frame-rate file at the output rate
    info: VideoInfo
    first: int  # first source frame
    frames: int
    title: str
    processor: Processor

    def time(self, frame: int) -> float:
        """Source time of the clip's frame `frame` (0 = its first), in seconds."""
        return float((self.first + frame) / self.info.fps)

    def audio(self) -> ClipAudio:
        track = self.info.audio
        return ClipAudio(self.source if track else None, self.info.start + float(self.first / self.info.fps),
                         float(self.frames / self.info.fps), track.index if track else 0)

    def whole_audio(self) -> Optional[Soundtrack]:
        """The source's audio track as it is, if this clip shows the whole source, the track starts
        with the video (within half a frame) and an MP4 takes its codec."""
        track = self.info.audio
        if (track is None or self.first or self.frames != self.info.frames or track.codec not in MP4_AUDIO
                or abs(track.start - self.info.start) > 0.5 / self.info.fps):
            return None
        return Soundtrack(self.source, track.index)


@dataclass
class RenderPlan:
    clips: list[ClipPlan]
    width: int
    height: int
    fps: Fraction
    with_chapters: bool
    fmt: FrameFormat = BGR
    work_s: float = 0.0  # estimated seconds on a T4 (limits.work_seconds)

    @property
    def total_frames(self) -> int:
        return sum(c.frames for c in self.clips)

    def frame_bytes(self) -> int:
        """The largest frame the render holds: a source frame or an output frame, BGR or I420."""
        sides = [(c.info.width, c.info.height) for c in self.clips] + [(self.width, self.height)]
        return max(math.prod(self.fmt.shape(w, h)) for w, h in sides)

    def copied_audio(self) -> Optional[Soundtrack]:
        """The audio to copy into the output as it is; None when it must be cut, joined or made."""
        return self.clips[0].whole_audio() if len(self.clips) == 1 else None

    def chapters(self) -> list[Chapter]:
        if not self.with_chapters:
            return []
        starts = [sum(c.frames for c in self.clips[:i]) for i in range(len(self.clips))]
        return [Chapter(c.title or f"Clip {i + 1}", s, c.frames) for i, (c, s) in enumerate(zip(self.clips, starts))]


def frame_range(start_s: float, end_s: Optional[float], fps: Fraction, available: int) -> tuple[int, int]:
    """(first frame, frame count) of the clip [start_s, end_s) at `fps`.

    The rule: first = round(start_s * fps), end = round(end_s * fps) (end_s None: the source's
    end), both clamped to [0, available], count = end - first. Deterministic, and adjacent clips
    [a, b) and [b, c) share no frame and miss none."""
    first = min(max(round(start_s * fps), 0), available)
    end = available if end_s is None else min(max(round(end_s * fps), 0), available)
    return first, max(end - first, 0)


def make_plan(spec: OverlayJob | FramingJob | MultiClipJob, inputs: dict[str, str], workdir: str,
              upscaler_factory: Optional[Callable] = None, limits: Limits = Limits()) -> RenderPlan:
    """Probe the inputs and hold the job to the pod's limits (before anything is decoded), then
    re-time VFR or other-rate inputs to the output rate in workdir and size everything to one
    output: the first clip's (processed) size unless the job sets one."""
    clips = _clips_of(spec)
    infos = {key: _probe(inputs[key], limits) for key in dict.fromkeys(c.input_video_key for c in clips)}
    work_s = _work(spec, clips, infos, limits)
    out_w = out_h = None
    if isinstance(spec, MultiClipJob):
        out_w, out_h = spec.params.output_width, spec.params.output_height
    fps = None
    plans = []
    sources: dict[tuple[str, Fraction], tuple[str, VideoInfo]] = {}  # an input used by several clips: re-timed once
    for i, clip in enumerate(clips):
        key = clip.input_video_key
        wanted = fps or infos[key].fps
        if (key, wanted) not in sources:
            sources[key, wanted] = _cfr_source(inputs[key], infos[key], fps, workdir)
        source, info = sources[key, wanted]
        fps = fps or info.fps
        first, frames = frame_range(clip.start_s, clip.end_s, fps, info.frames)
        if not frames:
            raise CorruptInput(f"clip {i + 1} has no frames: it starts at {clip.start_s} s, "
                               f"and its video is {info.duration:.2f} s long")
        processor = _clip_processor(clip, info, upscaler_factory)
        if out_w is None or out_h is None:
            out_w, out_h = out_w or _even(processor.out_width), out_h or _even(processor.out_height)
        if (processor.out_width, processor.out_height) != (out_w, out_h):
            processor = Chain([processor, Fit(processor.out_width, processor.out_height, out_w, out_h)])
        plans.append(ClipPlan(source, info, first, frames, clip.title, processor))
    return RenderPlan(plans, out_w, out_h, fps, isinstance(spec, MultiClipJob), _frame_format(plans), work_s)


def _probe(path: str, limits: Limits) -> VideoInfo:
    info = probe(path, limits.max_input_pixels)
    limits.check_input(info.frames)
    return info


def _work(spec, clips: list[Clip], infos: dict[str, VideoInfo], limits: Limits) -> float:
    """The job's estimated work (T4 seconds), held to the limit: each clip's frames at the output
    rate times its processed size and its model's cost."""
    fps = infos[clips[0].input_video_key].fps
    total_s, total_frames = 0.0, 0
    for clip in clips:
        info = infos[clip.input_video_key]
        _, frames = frame_range(clip.start_s, clip.end_s, fps, round(info.duration * fps))
        width, height = _clip_size(spec, clip, info)
        total_s += work_seconds(frames, width, height, clip.framing.upscale_model if clip.framing else "none")
        total_frames += frames
    width, height = _clip_size(spec, clips[0], infos[clips[0].input_video_key])
    limits.check_work(total_s, total_frames, width, height)
    return total_s


def _clip_size(spec, clip: Clip, info: VideoInfo) -> tuple[int, int]:
    """The size a clip is rendered at: its framing's, else the job's output, else its own."""
    if clip.framing:
        return clip.framing.output_width, clip.framing.output_height
    if isinstance(spec, MultiClipJob) and spec.params.output_width and spec.params.output_height:
        return spec.params.output_width, spec.params.output_height
    return info.width, info.height


def _frame_format(clips: list[ClipPlan]) -> FrameFormat:
    """I420 straight from the decoder to the encoder where possible: every processor takes it,
    every source is plain 4:2:0 of even size, all with the same colour tags."""
    colors = {c.info.color for c in clips}
    if len(colors) == 1 and all("yuv420p" in pix_fmts(c.processor) and c.info.i420
                                and c.info.width % 2 == 0 and c.info.height % 2 == 0 for c in clips):
        return FrameFormat("yuv420p", colors.pop())
    return BGR


def _clips_of(spec) -> list[Clip]:
    if isinstance(spec, MultiClipJob):
        return spec.params.clips
    if isinstance(spec, OverlayJob):
        return [Clip(input_video_key=spec.input_video_key, overlay=spec.params)]
    return [Clip(input_video_key=spec.input_video_key, framing=spec.params)]


def _cfr_source(path: str, info: VideoInfo, fps: Optional[Fraction], workdir: str) -> tuple[str, VideoInfo]:
    """The input, or a copy of it re-timed to `fps` (default: its own rate) if it is VFR or
    has another rate. Copies are kept in workdir and reused."""
    fps = fps or info.fps
    if not info.is_vfr and info.fps == fps:
        return path, info
    digest = hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]
    converted = os.path.join(workdir, f"cfr_{digest}_{fps.numerator}_{fps.denominator}.mkv")
    if not os.path.exists(converted):
        to_cfr(path, converted, fps, info.audio)
    return converted, probe(converted)


def _clip_processor(clip: Clip, info: VideoInfo, upscaler_factory) -> Processor:
    """Overlay first (its coordinates are in the source frame), then framing."""
    steps, w, h = [], info.width, info.height
    for part in (clip.overlay, clip.framing):
        if part is not None:
            steps.append(make_processor(part, w, h, upscaler_factory))
            w, h = steps[-1].out_width, steps[-1].out_height
    if not steps:
        return PassThrough(w, h)
    return steps[0] if len(steps) == 1 else Chain(steps)


def _even(side: int) -> int:
    return max(2, side - side % 2)
