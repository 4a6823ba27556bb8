"""The spotlight overlay: keyframed ellipses stay bright, the rest of the frame is dimmed.

Per pixel, region r gives a gain of 1 inside its ellipse, falling to 1 - dim_r over a soft
edge just outside it: `feather` x the frame's shorter side wide on a circle; on an ellipse the
band is uniform in the ellipse's own radius (wider along the long axis). The brightest region
wins, so the background is dimmed by the smallest `dim`. Only the bounding box of the ellipses and their soft
edges takes a per-pixel float pass; the rest of the frame goes through a 256-entry lookup table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from jobspec import OverlayParams

from ..keyframes import interpolate

FIELDS = ("x", "y", "rx", "ry")


@dataclass
class Ellipse:
    """One region at one time, in pixels; `band` is the soft edge in units of the radius."""

    cx: float
    cy: float
    rx: float
    ry: float
    band: float
    keep: float  # the gain far outside: 1 - dim

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        grow = 1 + self.band
        return (max(0, math.floor(self.cx - self.rx * grow)), max(0, math.floor(self.cy - self.ry * grow)),
                min(width, math.ceil(self.cx + self.rx * grow) + 1), min(height, math.ceil(self.cy + self.ry * grow) + 1))


class OverlayProcessor:
    def __init__(self, params: OverlayParams, width: int, height: int):
        self.out_width, self.out_height = width, height
        self._regions = params.highlight_regions
        self._cols = np.arange(width, dtype=np.float32) + 0.5  # pixel centres
        self._rows = np.arange(height, dtype=np.float32) + 0.5
        # scratch planes, reused every frame (views of the first h*w elements)
        self._dist = np.empty(width * height, np.float32)
        self._gain = np.empty(width * height, np.float32)
        self._gain8 = np.empty(width * height, np.uint8)
        self._gain3 = np.empty(width * height * 3, np.uint8)
        self._luts: dict[float, np.ndarray] = {}

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
        """Apply the overlay to `frame` in place."""
        ellipses = self.ellipses(t)
        boxes = [e.box(self.out_width, self.out_height) for e in ellipses]
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        background = self._lut(max(e.keep for e in ellipses))
        for strip in (frame[:y0], frame[y1:], frame[y0:y1, :x0], frame[y0:y1, x1:]):
            if strip.size:
                cv2.LUT(strip, background, dst=strip)
        box = frame[y0:y1, x0:x1]
        gain3 = self._gain_box(ellipses, x0, y0, x1, y1)
        cv2.multiply(box, gain3, dst=box, scale=1 / 255)

    def _gain_box(self, ellipses: list[Ellipse], x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The gain over the box as uint8 (255 = 1), three channels."""
        shape = (y1 - y0, x1 - x0)
        n = shape[0] * shape[1]
        dist, gain = self._dist[:n].reshape(shape), self._gain[:n].reshape(shape)
        for i, e in enumerate(ellipses):
            self._region_gain(e, x0, y0, x1, y1, out=gain if i == 0 else dist)
            if i:
                np.maximum(gain, dist, out=gain)
        gain8 = self._gain8[:n].reshape(shape)
        cv2.convertScaleAbs(gain, dst=gain8, alpha=255)
        gain3 = self._gain3[: n * 3].reshape(*shape, 3)
        cv2.cvtColor(gain8, cv2.COLOR_GRAY2BGR, dst=gain3)
        return gain3

    def _region_gain(self, e: Ellipse, x0: int, y0: int, x1: int, y1: int, out: np.ndarray) -> None:
        # normalised elliptical distance d (1 on the ellipse), then
        # gain = keep + (1 - keep) * clip((1 + band - d) / band, 0, 1) as one multiply-add and a clip
        dx = np.square((self._cols[x0:x1] - e.cx) / e.rx)
        dy = np.square((self._rows[y0:y1] - e.cy) / e.ry)
        np.add(dy[:, None], dx[None, :], out=out)
        cv2.sqrt(out, out)
        slope = (1 - e.keep) / e.band
        np.multiply(out, -slope, out=out)
        out += e.keep + slope * (1 + e.band)
        np.clip(out, e.keep, 1.0, out=out)

    def _lut(self, keep: float) -> np.ndarray:
        if keep not in self._luts:
            self._luts[keep] = np.clip(np.round(np.arange(256) * keep), 0, 255).astype(np.uint8)
        return self._luts[keep]
