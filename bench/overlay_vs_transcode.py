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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--codec", default=None, help="default: choose_codec()")
    args = p.parse_args()
    codec = args.codec or choose_codec()
    settings = encoder_settings(codec, 1280, 720, Fraction(FPS))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = make_clip(folder, SECONDS)
        bare = ["-i", clip, *encoder_args(settings), "-c:a", "aac", str(folder / "bare.mp4")]
        print(f"720p{FPS}, {SECONDS * FPS} frames, {codec} preset {settings.preset} quality {settings.quality}")
        result = interleaved({
            "bare ffmpeg transcode": lambda: run_ffmpeg(*bare),
            "overlay export (render)": lambda: render_once(clip, folder, codec=codec),
        }, SECONDS * FPS, args.repeats)
    (bare_fps, bare_cpu), (ours_fps, ours_cpu) = result.values()
    print(f"ratio overlay/bare: fps {ours_fps / bare_fps:.2f} (target >= 0.9), "
          f"CPU time {bare_cpu / ours_cpu:.2f} (bare CPU s / ours)")


if __name__ == "__main__":
    main()
