"""The overlay export's speed against a bare ffmpeg transcode of the same clip.

On one generated 720p30 10 s clip (testsrc2 + sine), interleaved, median of --repeats:
  (a) ffmpeg -i clip <our H.264 settings> -c:a aac out.mp4
  (b) render() of an overlay job (in-process decode -> spotlight in YUV -> encode pipe,
      segments, audio mux)
and prints (b) fps / (a) fps (target >= 0.9), and the same ratio in CPU time, which is the
steadier one when other work shares the machine.

    .venv/bin/python -m bench.overlay_vs_transcode [--repeats 4] [--codec libx264]
"""

from __future__ import annotations

import argparse
import tempfile
from fractions import Fraction
from pathlib import Path

from bench.render_bench import interleaved, make_clip, render_once

from gpu_worker.media import choose_codec, encoder_args, encoder_settings, run_ffmpeg

SECONDS, FPS = 10, 30


def measure(codec: str, seconds: int = SECONDS, size: str = "1280x720", repeats: int = 4) -> tuple[float, float]:
    """(overlay fps / bare fps, bare CPU s / overlay CPU s) on a generated `size` clip of `seconds`
    at 30 fps, the two cases interleaved, median of `repeats`; prints interleaved's table."""
    w, h = (int(v) for v in size.split("x"))
    settings = encoder_settings(codec, w, h, Fraction(FPS))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = make_clip(folder, seconds, size=size)
        bare = ["-i", clip, *encoder_args(settings), "-c:a", "aac", str(folder / "bare.mp4")]
        result = interleaved({
            "bare ffmpeg transcode": lambda: run_ffmpeg(*bare),
            "overlay export (render)": lambda: render_once(clip, folder, codec=codec),
        }, seconds * FPS, repeats)
    (bare_fps, bare_cpu), (ours_fps, ours_cpu) = result.values()
    return ours_fps / bare_fps, bare_cpu / ours_cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--codec", default=None, help="default: choose_codec()")
    args = p.parse_args()
    codec = args.codec or choose_codec()
    settings = encoder_settings(codec, 1280, 720, Fraction(FPS))
    print(f"720p{FPS}, {SECONDS * FPS} frames, {codec} preset {settings.preset} quality {settings.quality}")
    fps_ratio, cpu_ratio = measure(codec, SECONDS, "1280x720", args.repeats)
    print(f"ratio overlay/bare: fps {fps_ratio:.2f} (target >= 0.9), "
          f"CPU time {cpu_ratio:.2f} (bare CPU s / ours)")


if __name__ == "__main__":
    main()
