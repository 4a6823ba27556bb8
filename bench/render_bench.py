"""Shared by the render benchmarks: a generated clip, the overlay job, interleaved timing."""

from __future__ import annotations

import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

from jobspec import JOB_SPEC

from gpu_worker.render import render
from gpu_worker.segments import DirectoryStore
from tests import clips

KEY = "videos/raw/bench/clip/clip.mp4"


def make_clip(folder: Path, seconds: int, size: str = "1280x720") -> str:
    return str(clips.make_clip(folder / f"clip_{size}_{seconds}s.mp4", seconds, fps=30, size=size, preset="veryfast"))


def overlay_job():
    """One spotlight moving across the frame over 10 s: a quarter of the frame in the float pass."""
    keyframes = [{"t": 0, "x": 0.3, "y": 0.5, "rx": 0.2, "ry": 0.3}, {"t": 10, "x": 0.7, "y": 0.4, "rx": 0.25, "ry": 0.3}]
    return JOB_SPEC.validate_python({"type": "overlay", "input_video_key": KEY,
                                     "params": {"highlight_regions": [{"keyframes": keyframes, "dim": 0.6}]}})


def render_once(clip: str, folder: Path, **options) -> None:
    """One overlay export from scratch (fresh workdir and checkpoint store)."""
    work = Path(tempfile.mkdtemp(dir=folder))
    try:
        render(overlay_job(), {KEY: clip}, str(work / "work"), DirectoryStore(str(work / "store")), **options)
    finally:
        shutil.rmtree(work)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the ffmpeg processes)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def interleaved(cases: dict[str, Callable[[], None]], frames: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (fps, CPU seconds) per case; the cases take turns so that noise from other work on
    the machine hits them alike. On a busy machine the CPU time is the steadier number."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, run in cases.items():
            wall, cpu = time.perf_counter(), cpu_seconds()
            run()
            runs[name].append((time.perf_counter() - wall, cpu_seconds() - cpu))
    print(f"{'case':<30}{'fps':>7}{'wall s':>8}{'CPU s':>7}   wall s of each run")
    medians = {}
    for name, times in runs.items():
        wall, cpu = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        medians[name] = (frames / wall, cpu)
        print(f"{name:<30}{frames / wall:>7.1f}{wall:>8.2f}{cpu:>7.2f}   " + " ".join(f"{t[0]:.2f}" for t in times))
    return medians
