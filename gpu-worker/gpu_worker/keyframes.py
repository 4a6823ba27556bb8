"""Per-frame values from keyframes: each keyframe's `easing` shapes the way to the next one."""

from __future__ import annotations

import bisect
import math
from typing import Sequence

EASINGS = {
    "linear": lambda u: u,
    "ease_in": lambda u: u * u,
    "ease_out": lambda u: 1 - (1 - u) * (1 - u),
    "ease_in_out": lambda u: 0.5 - 0.5 * math.cos(math.pi * u),
    "hold": lambda u: 0.0,
}


def interpolate(keyframes: Sequence, t: float, fields: Sequence[str]) -> dict[str, float]:
    """Values of `fields` at time t. Before the first keyframe the first one holds, after the last
    the last one holds. `keyframes` are objects with `.t`, `.easing` and the fields, sorted by t."""
    times = [k.t for k in keyframes]
    i = bisect.bisect_right(times, t) - 1
    if i < 0:
        return {f: getattr(keyframes[0], f) for f in fields}
    if i >= len(keyframes) - 1:
        return {f: getattr(keyframes[-1], f) for f in fields}
    a, b = keyframes[i], keyframes[i + 1]
    u = EASINGS[a.easing]((t - a.t) / (b.t - a.t))
    return {f: getattr(a, f) + (getattr(b, f) - getattr(a, f)) * u for f in fields}
