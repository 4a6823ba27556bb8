"""The final file: the joined video, each clip's audio cut to its frames, chapters, +faststart."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction

from .media import run_ffmpeg

AUDIO_RATE = 48000


@dataclass(frozen=True)
class ClipAudio:
    """The audio under one clip: `duration` seconds from `start` in `path` (None: silence)."""

    path: str | None
    start: float
    duration: float


@dataclass(frozen=True)
class Chapter:
    title: str
    first_frame: int
    frames: int


def mux(video_input: list[str], video_codec: list[str], out: str, audio: list[ClipAudio],
        chapters: list[Chapter], fps: Fraction) -> None:
    """Write `out` from a video input (ffmpeg input options) and the clips' audio, concatenated
    in order; each clip's audio is padded or cut to exactly its duration so it stays in sync.
    No clip with audio: no audio track."""
    args = list(video_input)
    maps = ["-map", "0:v:0"]
    n_inputs = 1
    if any(a.path for a in audio):
        inputs, graph = _audio_graph(audio, first_input=1)
        args += inputs
        n_inputs += inputs.count("-i")
        maps += ["-filter_complex", graph, "-map", "[aout]", "-c:a", "aac", "-b:a", "160k"]
    if chapters:
        args += ["-f", "ffmetadata", "-i", _write_chapters(chapters, fps, out + ".chapters.txt")]
        maps += ["-map_chapters", str(n_inputs)]
    else:
        maps += ["-map_chapters", "-1"]
    part = out + ".part.mp4"
    run_ffmpeg(*args, *maps, *video_codec, "-movflags", "+faststart", part)
    os.replace(part, out)


def _audio_graph(audio: list[ClipAudio], first_input: int) -> tuple[list[str], str]:
    """ffmpeg inputs (one per clip with audio) and the filter graph that ends in [aout]."""
    inputs, chains, k = [], [], first_input
    for i, a in enumerate(audio):
        d = f"{a.duration:.6f}"
        if a.path:
            inputs += ["-ss", f"{a.start:.6f}", "-t", d, "-i", a.path]
            chains.append(f"[{k}:a:0]aresample={AUDIO_RATE}:async=1:first_pts=0,"
                          f"aformat=sample_fmts=fltp:channel_layouts=stereo,apad=whole_dur={d},atrim=duration={d}[a{i}]")
            k += 1
        else:
            chains.append(f"anullsrc=r={AUDIO_RATE}:cl=stereo:d={d},aformat=sample_fmts=fltp[a{i}]")
    labels = "".join(f"[a{i}]" for i in range(len(audio)))
    return inputs, ";".join(chains + [f"{labels}concat=n={len(audio)}:v=0:a=1[aout]"])


def _write_chapters(chapters: list[Chapter], fps: Fraction, path: str) -> str:
    """An FFMETADATA file; the time base is one frame, so chapter bounds are exact frame numbers."""
    lines = [";FFMETADATA1"]
    for c in chapters:
        lines += ["[CHAPTER]", f"TIMEBASE={fps.denominator}/{fps.numerator}", f"START={c.first_frame}",
                  f"END={c.first_frame + c.frames}", f"title={_escape(c.title)}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _escape(value: str) -> str:
    return re.sub(r"([=;#\\\n])", r"\\\1", value)
