"""Fit frames of one size into another: scale keeping the aspect ratio, centre on black."""

from __future__ import annotations

import cv2
import numpy as np


class Fit:
    """Letterbox/pillarbox to out_width x out_height. A frame at most one pixel larger in each
    side (an odd size made even for yuv420p) is cropped instead, so it is not resampled."""

    def __init__(self, src_w: int, src_h: int, out_w: int, out_h: int):
        self.out_width, self.out_height = out_w, out_h
        self._crop = 0 <= src_w - out_w <= 1 and 0 <= src_h - out_h <= 1
        scale = min(out_w / src_w, out_h / src_h)
        self._w, self._h = min(out_w, max(1, round(src_w * scale))), min(out_h, max(1, round(src_h * scale)))
        self._x, self._y = (out_w - self._w) // 2, (out_h - self._h) // 2
        self._interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC

    def process(self, frames: list[np.ndarray], times: list[float]) -> list[np.ndarray]:
        return [self._fit(f) for f in frames]

    def _fit(self, frame: np.ndarray) -> np.ndarray:
        if self._crop:
            return frame[: self.out_height, : self.out_width]
        canvas = np.zeros((self.out_height, self.out_width, 3), np.uint8)
        canvas[self._y : self._y + self._h, self._x : self._x + self._w] = cv2.resize(
            frame, (self._w, self._h), interpolation=self._interpolation)
        return canvas
