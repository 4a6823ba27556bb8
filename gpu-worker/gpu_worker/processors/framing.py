"""The framing processor: an animated crop of the source, upscaled to the job's output size.

A crop keyframe's x, y (top-left) and w, h are fractions of the source frame as a player shows it
(after a phone video's display matrix: the frames are already upright), interpolated between
keyframes as in keyframes.interpolate. The crop is taken with sub-pixel precision (getRectSubPix,
bilinear), then resized to the output size; the output's aspect may stretch the crop.

Every crop is resized to one fixed model input size (the output's pixel count / scale², in the crops'
aspect): static shapes are what let cudnn.benchmark or TensorRT pay off, and the model then sees the
crop undistorted; the only stretch, if the crop's aspect differs from the output's, comes after it.
With upscale_model "none" this module never imports torch, so overlay-only pods do not load it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from gpu_worker.keyframes import interpolate


class FramingProcessor:
    def __init__(self, params, src_w: int, src_h: int, upscaler=None):
        """`params` is a jobspec.FramingParams; `upscaler` an upscale.Upscaler (anything with `scale`
        and `upscale(frames)`), None exactly when params.upscale_model is "none"."""
        if (upscaler is None) != (params.upscale_model == "none"):
            raise ValueError(f"upscale_model {params.upscale_model!r} with upscaler {upscaler!r}")
        self.keyframes = params.crop_keyframes
        self.src_w, self.src_h = src_w, src_h
        self.out_width, self.out_height = params.output_width, params.output_height
        self.upscaler = upscaler
        self.model_size = None if upscaler is None else model_input_size(params, src_w, src_h, upscaler.scale)

    @classmethod
    def from_params(cls, params, src_w: int, src_h: int, weights_dir=None, device=None) -> "FramingProcessor":
        """Loads the job's upscaler from the weights dir (upscale.default_weights_dir() when None)."""
        if params.upscale_model == "none":
            return cls(params, src_w, src_h)
        from gpu_worker.upscale import load_upscaler  # imports torch: only when a model is used

        return cls(params, src_w, src_h, load_upscaler(params.upscale_model, weights_dir, device))

    def process(self, frames: list[np.ndarray], times: list[float]) -> list[np.ndarray]:
        """Source frames (HxWx3 uint8 BGR) at source times (s) -> output frames."""
        crops = [self.crop(frame, t) for frame, t in zip(frames, times, strict=True)]
        if self.upscaler is not None:
            crops = self.upscaler.upscale([resize(c, self.model_size) for c in crops])
        return [resize(c, (self.out_width, self.out_height)) for c in crops]

    def crop(self, frame: np.ndarray, t: float) -> np.ndarray:
        """The crop rectangle at time t, positioned to a fraction of a pixel so slow pans do not jitter."""
        if frame.shape[:2] != (self.src_h, self.src_w):
            raise ValueError(f"frame of {frame.shape[1]}x{frame.shape[0]}, expected {self.src_w}x{self.src_h}")
        r = interpolate(self.keyframes, t, ("x", "y", "w", "h"))
        size = (max(1, round(r["w"] * self.src_w)), max(1, round(r["h"] * self.src_h)))
        # getRectSubPix wants the centre in pixel-index coordinates (pixel k's centre is at k).
        centre = ((r["x"] + r["w"] / 2) * self.src_w - 0.5, (r["y"] + r["h"] / 2) * self.src_h - 0.5)
        return cv2.getRectSubPix(frame, size, centre)


def model_input_size(params, src_w: int, src_h: int, scale: int) -> tuple[int, int]:
    """(w, h) with the output's pixel count / scale² and the keyframes' mean crop aspect (geometric,
    so 2:1 and 1:2 average to 1:1)."""
    logs = [math.log(k.w * src_w / (k.h * src_h)) for k in params.crop_keyframes]
    aspect = math.exp(sum(logs) / len(logs))
    area = params.output_width * params.output_height / scale**2
    return max(1, round(math.sqrt(area * aspect))), max(1, round(math.sqrt(area / aspect)))


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """To (w, h): area averaging when shrinking (no aliasing), Lanczos otherwise."""
    h, w = img.shape[:2]
    if (w, h) == size:
        return img
    shrinking = size[0] <= w and size[1] <= h
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4)
