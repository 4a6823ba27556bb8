"""The spotlight overlay: keyframed ellipses stay bright, the rest of the frame is dimmed.

Coordinates: a keyframe's x, y (centre) and rx, ry (radii) are fractions of the width and height of
the frame as a player shows it (after a phone video's display matrix is applied: the frames this
processor gets are already upright). Between keyframes each value follows keyframes.interpolate
(the earlier keyframe's easing); before the first and after the last keyframe it holds.

Per pixel, region r gives a gain of 1 inside its ellipse, falling to 1 - dim_r over a soft
edge just outside it: `feather` x the frame's shorter side wide on a circle; on an ellipse the
band is uniform in the ellipse's own radius (wider along the long axis). The brightest region
wins, so the background is dimmed by the smallest `dim`.

Dimming scales a value's distance from black: BGR values, or in I420 the distance of Y from 16
and of U, V from 128 (the same thing, as YUV is linear in RGB). Only the bounding box of the
ellipses and their soft edges takes a per-pixel float pass; the rest, one scale-and-add.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from jobspec import OverlayParams

from ..keyframes import interpolate
from ..media import i420_planes

FIELDS = ("x", "y", "rx", "ry")
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in samples of a plane


@dataclass
class Ellipse:
    """One region at one time, in pixels; `band` is the soft edge in units of the radius."""

    cx: float
    cy: float
    rx: float
    ry: float
    band: float
    keep: float  # the gain far outside: 1 - dim


class OverlayProcessor:
    pix_fmts = ("yuv420p", "bgr24")

    def __init__(self, params: OverlayParams, width: int, height: int):
        self.out_width, self.out_height = width, height
        self._regions = params.highlight_regions
        self._luma = _Plane(width, height, step=1)
        self._chroma = _Plane(width // 2, height // 2, step=2)

    def process(self, frames: list[np.ndarray], times: list[float]) -> list[np.ndarray]:
        for frame, t in zip(frames, times):
            self.spotlight(frame, t)
        return frames

    def ellipses(self, t: float) -> list[Ellipse]:
        w, h = self.out_width, self.out_height
        out = []
        for region in self._regions:
            k = interpolate(region.keyframes, t, FIELDS)
            rx, ry = max(k["rx"] * w, 0.5), max(k["ry"] * h, 0.5)
            band = region.feather * min(w, h) / math.sqrt(rx * ry)
            out.append(Ellipse(k["x"] * w, k["y"] * h, rx, ry, max(band, 1e-6), 1 - region.dim))
        return out

    def spotlight(self, frame: np.ndarray, t: float) -> None:
        """Apply the overlay to a BGR or I420 frame, in place."""
        ellipses = self.ellipses(t)
        if frame.ndim == 3:
            self._dim([frame], self._luma, ellipses, black=0)
        else:
            y, u, v = i420_planes(frame, self.out_width, self.out_height)
            self._dim([y], self._luma, ellipses, black=16)
            self._dim([u, v], self._chroma, ellipses, black=128)

    def _dim(self, planes: list[np.ndarray], grid: _Plane, ellipses: list[Ellipse], black: int) -> None:
        x0, y0, x1, y1 = grid.box(ellipses)
        keep = max(e.keep for e in ellipses)
        for plane in planes:
            for strip in (plane[:y0], plane[y1:], plane[y0:y1, :x0], plane[y0:y1, x1:]):
                if strip.size:  # black + (strip - black) * keep, rounded (the fastest SIMD pass here)
                    cv2.convertScaleAbs(strip, dst=strip, alpha=keep, beta=black * (1 - keep))
        gain = grid.gain(ellipses, (x0, y0, x1, y1))
        for plane in planes:
            grid.blend(plane[y0:y1, x0:x1], gain, black)


class _Plane:
    """The samples of one plane (every `step`-th pixel of the frame) and reused float buffers."""

    def __init__(self, width: int, height: int, step: int):
        self.width, self.height, self.step = width, height, step
        self.cols = (np.arange(width, dtype=np.float32) + 0.5) * step  # sample centres, in frame pixels
        self.rows = (np.arange(height, dtype=np.float32) + 0.5) * step
        self._buffers: dict[str, np.ndarray] = {}

    def box(self, ellipses: list[Ellipse]) -> Box:
        """The samples that the ellipses and their soft edges touch (never empty: centres lie in the frame)."""
        grow = [1 + e.band for e in ellipses]
        x0 = min(math.floor((e.cx - e.rx * g) / self.step) for e, g in zip(ellipses, grow))
        y0 = min(math.floor((e.cy - e.ry * g) / self.step) for e, g in zip(ellipses, grow))
        x1 = max(math.ceil((e.cx + e.rx * g) / self.step) + 1 for e, g in zip(ellipses, grow))
        y1 = max(math.ceil((e.cy + e.ry * g) / self.step) + 1 for e, g in zip(ellipses, grow))
        return max(x0, 0), max(y0, 0), min(x1, self.width), min(y1, self.height)

    def gain(self, ellipses: list[Ellipse], box: Box) -> np.ndarray:
        """Gain over the box: the brightest region's."""
        x0, y0, x1, y1 = box
        shape = (y1 - y0, x1 - x0)
        gain, other = self._buffer("gain", shape), self._buffer("other", shape)
        for i, e in enumerate(ellipses):
            self._region_gain(e, box, out=gain if i == 0 else other)
            if i:
                np.maximum(gain, other, out=gain)
        return gain

    def _region_gain(self, e: Ellipse, box: Box, out: np.ndarray) -> None:
        # normalised elliptical distance d (1 on the ellipse), then
        # gain = keep + (1 - keep) * clip((1 + band - d) / band, 0, 1) as one multiply-add and a clip
        x0, y0, x1, y1 = box
        dx = np.square((self.cols[x0:x1] - e.cx) / e.rx)
        dy = np.square((self.rows[y0:y1] - e.cy) / e.ry)
        np.add(dy[:, None], dx[None, :], out=out)
        cv2.sqrt(out, out)
        slope = (1 - e.keep) / e.band
        np.multiply(out, -slope, out=out)
        out += e.keep + slope * (1 + e.band)
        np.clip(out, e.keep, 1.0, out=out)

    def blend(self, box: np.ndarray, gain: np.ndarray, black: int) -> None:
        """box = black + (box - black) * gain, rounded, in place."""
        f = self._buffer("blend", box.shape)
        np.copyto(f, box)
        if black:
            f -= black
        f *= gain if box.ndim == 2 else gain[..., None]
        f += black + 0.5
        np.copyto(box, f, casting="unsafe")  # truncating x + 0.5 rounds; values lie in [0, 255]

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        n = math.prod(shape)
        if name not in self._buffers or self._buffers[name].size < n:
            self._buffers[name] = np.empty(n, np.float32)
        return self._buffers[name][:n].reshape(shape)
