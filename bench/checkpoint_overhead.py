"""What checkpointing costs: the overlay export in segments of 300 frames against one segment.

On one generated 720p30 20 s clip (600 frames: two segments), interleaved, median of --repeats;
prints the overhead in wall time and in CPU time (target <= 3%).

    .venv/bin/python -m bench.checkpoint_overhead [--repeats 3] [--codec libx264]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from bench.render_bench import interleaved, make_clip, render_once

from gpu_worker.media import choose_codec

SECONDS, FPS, SEGMENT = 20, 30, 300


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--codec", default=None, help="default: choose_codec()")
    args = p.parse_args()
    codec = args.codec or choose_codec()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = make_clip(folder, SECONDS)
        print(f"720p{FPS}, {SECONDS * FPS} frames, {codec}")
        result = interleaved({
            f"segments of {SEGMENT} frames": lambda: render_once(clip, folder, codec=codec, segment_frames=SEGMENT),
            "one segment (no checkpoints)": lambda: render_once(clip, folder, codec=codec, segment_frames=10**9,
                                                                segment_seconds=math.inf),
        }, SECONDS * FPS, args.repeats)
    (seg_fps, seg_cpu), (one_fps, one_cpu) = result.values()
    print(f"checkpoint overhead: wall {100 * (one_fps / seg_fps - 1):+.1f}%, CPU {100 * (seg_cpu / one_cpu - 1):+.1f}% "
          "(target <= 3%)")


if __name__ == "__main__":
    main()
