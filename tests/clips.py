"""Input videos for the tests, the chaos run and the demo: lavfi testsrc2 (H.264) with a sine tone (AAC)."""

from __future__ import annotations

from pathlib import Path

from gpu_worker.media import run_ffmpeg

FPS = 30


def make_clip(path: Path, seconds: float, video_filter: str = "null", *, fps: int = FPS, size: str = "256x144",
              tone_hz: int = 440, audio: bool = True, channel_layout: str | None = None,
              preset: str = "ultrafast") -> Path:
    """`video_filter` is applied to the picture, e.g. `scroll=horizontal=0.004` (neighbouring frames then
    differ clearly), a drawn shape to track, or a `select` that drops frames (the clip is then VFR).
    `channel_layout` (e.g. "5.1") spreads the tone over those channels (default: mono)."""
    inputs = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency={tone_hz}", "-c:a", "aac"]
        if channel_layout:
            inputs += ["-af", f"aformat=channel_layouts={channel_layout}"]
    run_ffmpeg(*inputs, "-t", str(seconds), "-vf", video_filter, "-fps_mode", "vfr", "-c:v", "libx264",
               "-preset", preset, "-pix_fmt", "yuv420p", str(path))
    return path
