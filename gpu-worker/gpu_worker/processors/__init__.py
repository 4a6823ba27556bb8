"""Frame processors: what happens to each frame between decoding and encoding.

A processor has `out_width`, `out_height` and `process(frames, times) -> frames`: a batch of
HxWx3 uint8 BGR frames with their times in seconds of the source video (what keyframes are
written in), returned as frames of the output size. It may modify BGR frames in place.
Optionally `pix_fmts`: the frame formats it takes, best first; one that lists "yuv420p" may be
given the decoder's yuv420p av.VideoFrames instead (see media.FrameFormat), which skips two colour
conversions and two copies per frame; it must not write into those (see media.i420_planes).
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol, Sequence

import numpy as np
from jobspec import FramingParams, OverlayParams


class Processor(Protocol):
    out_width: int
    out_height: int

    def process(self, frames: list[np.ndarray], times: list[float]) -> list[np.ndarray]: ...


def pix_fmts(processor: Processor) -> tuple[str, ...]:
    return getattr(processor, "pix_fmts", ("bgr24",))


class PassThrough:
    pix_fmts = ("yuv420p", "bgr24")

    def __init__(self, width: int, height: int):
        self.out_width, self.out_height = width, height

    def process(self, frames: list[np.ndarray], times: list[float]) -> list[np.ndarray]:
        return frames


class Chain:
    """Processors applied one after the other."""

    def __init__(self, steps: Sequence[Processor]):
        self.steps = list(steps)
        self.out_width, self.out_height = self.steps[-1].out_width, self.steps[-1].out_height
        self.pix_fmts = tuple(f for f in pix_fmts(self.steps[0]) if all(f in pix_fmts(s) for s in self.steps))

    def process(self, frames: list[np.ndarray], times: list[float]) -> list[np.ndarray]:
        for step in self.steps:
            frames = step.process(frames, times)
        return frames


def make_processor(spec_part: OverlayParams | FramingParams | None, src_w: int, src_h: int,
                   upscaler_factory: Optional[Callable[[str], object]] = None) -> Processor:
    """The processor for one part of a job spec (None: frames pass through unchanged).
    upscaler_factory(model name) gives a framing job's upscaler (e.g. a cached loader);
    without one, the model is loaded from the default weights directory."""
    if isinstance(spec_part, OverlayParams):
        from .overlay import OverlayProcessor

        return OverlayProcessor(spec_part, src_w, src_h)
    if isinstance(spec_part, FramingParams):
        from .framing import FramingProcessor  # imported only when needed: it may load torch

        if upscaler_factory is None or spec_part.upscale_model == "none":
            return FramingProcessor.from_params(spec_part, src_w, src_h)
        return FramingProcessor(spec_part, src_w, src_h, upscaler_factory(spec_part.upscale_model))
    if spec_part is None:
        return PassThrough(src_w, src_h)
    raise TypeError(f"no processor for {type(spec_part).__name__}")
