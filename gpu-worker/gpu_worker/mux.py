"""The final file: the joined video, the audio, chapters, +faststart.

The audio is the source's own track, copied as it is (no generation loss), when one clip shows the
whole source and its audio starts with its video; else the clips' audio is cut to their frames,
joined and encoded once (AAC stereo 48 kHz: mono is spread to both sides, 5.1 mixed down)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from .media import FFmpegProcess, run_ffmpeg

AUDIO_RATE = 48000


@dataclass(frozen=True)
class ClipAudio:
    """The audio under one clip: `duration` seconds from `start` of audio track `track` in `path`
    (None: silence)."""

    path: str | None
    start: float
    duration: float
    track: int = 0


@dataclass(frozen=True)
class Soundtrack:
    """An audio track for the final file, stream-copied: track `track` of `path`."""

    path: str
    track: int = 0


@dataclass(frozen=True)
class Chapter:
    title: str
    first_frame: int
    frames: int


def start_soundtrack(audio: list[ClipAudio], path: str) -> Optional[FFmpegProcess]:
    """Start encoding the clips' audio, concatenated in order, to AAC in `path` (.m4a), in the
    background. Each clip's audio is padded or cut to exactly its duration, so it stays in sync.
    None when no clip has audio."""
    if not any(a.path for a in audio):
        return None
    inputs, graph = _audio_graph(audio)
    return FFmpegProcess(*inputs, "-filter_complex", graph, "-map", "[aout]", "-c:a", "aac", "-b:a", "160k", path)


def mux(video_input: list[str], video_codec: list[str], out: str, soundtrack: Optional[Soundtrack],
        chapters: list[Chapter], fps: Fraction, frames: int) -> None:
    """Write `out` from a video input (ffmpeg input options) of `frames` frames, the soundtrack
    (cut where the video ends) and the chapters."""
    args, maps = list(video_input), ["-map", "0:v:0"]
    if soundtrack:
        args += ["-i", soundtrack.path]
        maps += ["-map", f"1:a:{soundtrack.track}", "-c:a", "copy", "-t", f"{float(frames / fps):.6f}"]
    if chapters:
        args += ["-f", "ffmetadata", "-i", _write_chapters(chapters, fps, out + ".chapters.txt")]
        maps += ["-map_chapters", str(args.count("-i") - 1)]
    else:
        maps += ["-map_chapters", "-1"]
    part = out + ".part.mp4"
    run_ffmpeg(*args, *maps, *video_codec, "-movflags", "+faststart", part)
    os.replace(part, out)


def _audio_graph(audio: list[ClipAudio]) -> tuple[list[str], str]:
    """ffmpeg inputs (one per clip with audio) and the filter graph that ends in [aout]."""
    inputs, chains, k = [], [], 0
    for i, a in enumerate(audio):
        d = f"{a.duration:.6f}"
        if a.path:
            inputs += ["-ss", f"{a.start:.6f}", "-t", d, "-i", a.path]
            chains.append(f"[{k}:a:{a.track}]aresample={AUDIO_RATE}:async=1:first_pts=0,"
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
