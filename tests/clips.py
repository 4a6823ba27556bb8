"""Input videos for the tests, the chaos run and the demo: lavfi testsrc2 (H.264) with a sine tone (AAC)."""

from __future__ import annotations

from pathlib import Path

from gpu_worker.media import run_ffmpeg

FPS = 30


def make_clip(path: Path, seconds: float, *, fps: int = FPS, size: str = "256x144", tone_hz: int = 440,
              scroll: float = 0.0) -> Path:
    """`scroll`: move the picture by this fraction of its width a frame, so that neighbouring frames
    differ clearly (the chaos run tells frames apart by PSNR)."""
    video = f"testsrc2=size={size}:rate={fps}" + (f",scroll=horizontal={scroll}" if scroll else "")
    run_ffmpeg("-f", "lavfi", "-i", video, "-f", "lavfi", "-i", f"sine=frequency={tone_hz}",
               "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
               "-c:a", "aac", str(path))
    return path
