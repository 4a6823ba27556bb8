"""What one job may ask of a pod, so that no input or request can take a pod down.

Checked after probing, before a frame is decoded or a model loaded: the input's frame size
(pixels), its frame count, and the estimated work, frames x output pixels x the model's cost,
in seconds on a T4 (g4dn, the smallest node type). A job over a limit fails for good with a reason
that names the limit and its value. The render also gets a wall-time limit in proportion to its
estimate, and a memory bound: frame queues sized in bytes, every ffmpeg process under an address
space limit (torch's CUDA allocator is held to a share of the GPU in upscale.Upscaler; on the CPU
its tiles bound it).

The defaults are what a T4 pod renders comfortably; each is a worker option (see __main__).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import FatalJobError

# T4 seconds per output megapixel: the model (fp16), plus decoding, the crop or spotlight and NVENC.
# Measured on CPU here and scaled by the models' relative cost (MACs per output pixel: animevideov3
# 41 k, x4plus 1.1 M); to be checked with bench/gpu_check.py on a T4.
MODEL_COST_S_PER_MP = {"none": 0.0, "realesr-animevideov3": 0.015, "realesrgan-x4plus": 0.4}
BASE_COST_S_PER_MP = 0.002


class LimitExceeded(FatalJobError):
    """A job over one of the pod's limits: the message names the limit and its value."""


@dataclass(frozen=True)
class Limits:
    max_input_pixels: int = 4096 * 2304  # a 4K frame either way up, and a little more
    max_frames: int = 60 * 60 * 60  # an hour at 60 fps, per input
    max_work_s: float = 2 * 3600.0  # estimated seconds on a T4
    time_floor_s: float = 600.0  # the wall-time limit: floor + factor x estimate
    time_factor: float = 4.0
    queue_bytes: int = 256 << 20  # frames held in each queue (decoded, to encode)
    ffmpeg_memory_bytes: int = 4 << 30  # address space of each ffmpeg process

    def check_input(self, frames: int) -> None:
        if frames > self.max_frames:
            raise LimitExceeded(f"input video has {frames} frames; the limit (max_frames) is {self.max_frames}")

    def check_work(self, work_s: float, frames: int, width: int, height: int) -> None:
        if work_s > self.max_work_s:
            raise LimitExceeded(
                f"the job's estimated work is {work_s:.0f} s on a T4 ({frames} frames of {width}x{height}); "
                f"the limit (max_work_s) is {self.max_work_s:.0f} s")

    def time_limit_s(self, work_s: float) -> float:
        return self.time_floor_s + self.time_factor * work_s

    def queue_frames(self, frame_bytes: int, most: int = 8) -> int:
        """How many frames of this size a queue may hold: at least 2 (so stages overlap), at most `most`."""
        return max(2, min(most, self.queue_bytes // max(frame_bytes, 1)))


def work_seconds(frames: int, width: int, height: int, model: str) -> float:
    """Estimated T4 seconds to render `frames` output frames of width x height with `model`."""
    megapixels = width * height / 1e6
    return frames * megapixels * (BASE_COST_S_PER_MP + MODEL_COST_S_PER_MP.get(model, max(MODEL_COST_S_PER_MP.values())))


def timed_out(elapsed_s: float, limit_s: float) -> LimitExceeded:
    return LimitExceeded(f"the render ran past its time limit of {math.ceil(limit_s)} s "
                         f"(time_floor_s + time_factor x its estimated work); it had run {elapsed_s:.0f} s")
