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
ellipses and their soft edges takes a per-pixel float pass, less the largest ellipse's inscribed
rectangle (copied: half of an ellipse's box); outside the box, one scale-and-add.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import av
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

    def process(self, frames: list, times: list[float]) -> list:
        return [self.spotlight(frame, t) for frame, t in zip(frames, times)]

    def ellipses(self, t: float) -> list[Ellipse]:
        w, h = self.out_width, self.out_height
        out = []
        for region in self._regions:
            k = interpolate(region.keyframes, t, FIELDS)
            rx, ry = max(k["rx"] * w, 0.5), max(k["ry"] * h, 0.5)
            band = region.feather * min(w, h) / math.sqrt(rx * ry)
            out.append(Ellipse(k["x"] * w, k["y"] * h, rx, ry, max(band, 1e-6), 1 - region.dim))
        return out

    def spotlight(self, frame, t: float):
        """The overlay on a BGR array (changed in place) or a yuv420p av.VideoFrame (the decoder's:
        it may still read it as a reference, so the result is written to a new frame, in the same
        pass that dims it: no extra copy)."""
        ellipses = self.ellipses(t)
        if isinstance(frame, np.ndarray):
            self._dim([frame], [frame], self._luma, ellipses, black=0)
            return frame
        out = av.VideoFrame(frame.width, frame.height, "yuv420p")
        (y, u, v), (y2, u2, v2) = i420_planes(frame), i420_planes(out)
        self._dim([y], [y2], self._luma, ellipses, black=16)
        self._dim([u, v], [u2, v2], self._chroma, ellipses, black=128)
        return out

    def _dim(self, planes: list[np.ndarray], outs: list[np.ndarray], grid: _Plane, ellipses: list[Ellipse],
             black: int) -> None:
        box = grid.box(ellipses)
        keep = max(e.keep for e in ellipses)
        for rows, cols in _around((0, 0, grid.width, grid.height), box):
            for plane, out in zip(planes, outs):  # black + (plane - black) * keep, rounded (the fastest SIMD pass here)
                cv2.convertScaleAbs(plane[rows, cols], dst=out[rows, cols], alpha=keep, beta=black * (1 - keep))
        core = grid.core(ellipses, box)
        for plane, out in zip(planes, outs):
            np.copyto(out[core[1]:core[3], core[0]:core[2]], plane[core[1]:core[3], core[0]:core[2]])
        for rows, cols in _around(box, core):
            gain = grid.gain(ellipses, rows, cols)
            for plane, out in zip(planes, outs):
                grid.blend(plane[rows, cols], out[rows, cols], gain, black)


def _around(outer: Box, inner: Box):
    """The non-empty rectangles (as row and column slices) that tile `outer` minus `inner`:
    above, below, left of and right of it (`inner` lies within `outer`)."""
    x0, y0, x1, y1 = outer
    i0, j0, i1, j1 = inner
    parts = ((slice(y0, j0), slice(x0, x1)), (slice(j1, y1), slice(x0, x1)),
             (slice(j0, j1), slice(x0, i0)), (slice(j0, j1), slice(i1, x1)))
    return [(rows, cols) for rows, cols in parts if rows.stop > rows.start and cols.stop > cols.start]


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

    def core(self, ellipses: list[Ellipse], box: Box) -> Box:
        """Samples inside the largest ellipse's inscribed rectangle (gain 1 there, whatever the other
        regions do): the per-pixel pass skips them. Within `box`; may be empty."""
        e = max(ellipses, key=lambda e: e.rx * e.ry)
        half_w, half_h = e.rx / math.sqrt(2), e.ry / math.sqrt(2)
        x0, y0, x1, y1 = box
        # sample i's centre is (i + 0.5) * step: the first and last centres inside the rectangle
        i0 = min(max(math.ceil((e.cx - half_w) / self.step - 0.5), x0), x1)
        j0 = min(max(math.ceil((e.cy - half_h) / self.step - 0.5), y0), y1)
        i1 = max(min(math.floor((e.cx + half_w) / self.step - 0.5) + 1, x1), i0)
        j1 = max(min(math.floor((e.cy + half_h) / self.step - 0.5) + 1, y1), j0)
        return i0, j0, i1, j1

    def gain(self, ellipses: list[Ellipse], rows: slice, cols: slice) -> np.ndarray:
        """Gain over these samples: the brightest region's."""
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        gain, other = self._buffer("gain", shape), self._buffer("other", shape)
        for i, e in enumerate(ellipses):
            self._region_gain(e, rows, cols, out=gain if i == 0 else other)
            if i:
                np.maximum(gain, other, out=gain)
        return gain

    def _region_gain(self, e: Ellipse, rows: slice, cols: slice, out: np.ndarray) -> None:
        # normalised elliptical distance d (1 on the ellipse), then
        # gain = keep + (1 - keep) * clip((1 + band - d) / band, 0, 1) as one multiply-add and a clip
        dx = np.square((self.cols[cols] - e.cx) / e.rx)
        dy = np.square((self.rows[rows] - e.cy) / e.ry)
        np.add(dy[:, None], dx[None, :], out=out)
        cv2.sqrt(out, out)
        slope = (1 - e.keep) / e.band
        np.multiply(out, -slope, out=out)
        out += e.keep + slope * (1 + e.band)
        np.clip(out, e.keep, 1.0, out=out)

    def blend(self, box: np.ndarray, out: np.ndarray, gain: np.ndarray, black: int) -> None:
        """out = black + (box - black) * gain, rounded (out may be box)."""
        f = self._buffer("blend", box.shape)
        np.copyto(f, box)
        if black:
            f -= black
        f *= gain if box.ndim == 2 else gain[..., None]
        f += black + 0.5
        np.copyto(out, f, casting="unsafe")  # truncating x + 0.5 rounds; values lie in [0, 255]

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        n = math.prod(shape)
        if name not in self._buffers or self._buffers[name].size < n:
            self._buffers[name] = np.empty(n, np.float32)
        return self._buffers[name][:n].reshape(shape)
