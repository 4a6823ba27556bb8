"""Input videos for the tests that run GPU worker processes: 256x144 testsrc2 with a sine tone."""

from __future__ import annotations

from pathlib import Path

from gpu_worker.media import run_ffmpeg

FPS = 30


def make_clip(path: Path, seconds: float, video_filter: str = "null") -> Path:
    run_ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=256x144:rate={FPS}", "-f", "lavfi", "-i", "sine",
               "-t", str(seconds), "-vf", video_filter, "-c:v", "libx264", "-preset", "ultrafast",
               "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))
    return path
