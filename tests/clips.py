"""Input videos for the tests, the chaos run and the demo: lavfi testsrc2 (H.264) with a sine tone (AAC)."""

from __future__ import annotations

from pathlib import Path

from gpu_worker.media import run_ffmpeg

FPS = 30


def make_clip(path: Path, seconds: float, video_filter: str = "null", *, fps: int = FPS, size: str = "256x144",
              tone_hz: int = 440) -> Path:
    """`video_filter` is applied to the picture, e.g. `scroll=horizontal=0.004` (neighbouring frames then
    differ clearly) or a drawn shape to track."""
    run_ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}", "-f", "lavfi", "-i", f"sine=frequency={tone_hz}",
               "-t", str(seconds), "-vf", video_filter, "-c:v", "libx264", "-preset", "ultrafast",
               "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))
    return path
