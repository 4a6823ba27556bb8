"""Inputs like the ones phones, cameras and editors produce, made with ffmpeg: a display matrix,
HDR (HEVC Main 10, HLG or PQ, BT.2020), edit lists, start offsets, odd sizes, several audio tracks,
mono and 5.1 audio, and a flash + beep every half second to measure audio/video sync."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from gpu_worker.media import ffmpeg_exe, run_ffmpeg

from tests.clips import make_clip

# (option name, ffmpeg input options) of every display matrix a phone or editor writes
ORIENTATIONS = [
    ("rot90", ["-display_rotation", "90"]),
    ("rot180", ["-display_rotation", "180"]),
    ("rot270", ["-display_rotation", "270"]),
    ("hflip", ["-display_hflip"]),
    ("vflip", ["-display_vflip"]),
    ("rot90-hflip", ["-display_rotation", "90", "-display_hflip"]),
    ("rot90-vflip", ["-display_rotation", "90", "-display_vflip"]),
]

FLASH_EVERY_S = 0.5
BEEP_HZ = 1000


def encode(path: Path, *args: str) -> str:
    run_ffmpeg(*args, str(path))
    return str(path)


def pattern_clip(path: Path, size="160x96", rate=30, seconds=1.0, audio: str | None = "mono") -> str:
    """testsrc2 (asymmetric: any flip or turn shows), H.264 yuv420p, with a 440 Hz tone in this
    channel layout (None: no audio)."""
    return str(make_clip(path, seconds, fps=rate, size=size, audio=audio is not None, channel_layout=audio,
                         preset="veryfast"))


def with_display_matrix(src: str, path: Path, options: list[str]) -> str:
    """The same streams with a display matrix (what a phone writes for a portrait video)."""
    return encode(path, *options, "-i", src, "-c", "copy")


def upright(src: str, path: Path) -> str:
    """What a player shows: ffmpeg's autorotate applied, coded losslessly without a matrix."""
    return encode(path, "-i", src, "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", "-c:a", "copy")


def flash_beep(path: Path, size="160x96", rate=30, seconds=2.0, extra=()) -> str:
    """Black video with a white frame and a 1 kHz beep starting together every FLASH_EVERY_S."""
    every = round(FLASH_EVERY_S * rate)
    video = (f"color=black:size={size}:rate={rate}:duration={seconds},"
             f"drawbox=c=white:t=fill:enable='lt(mod(n\\,{every})\\,1)'")
    audio = f"aevalsrc='0.8*sin(2*PI*{BEEP_HZ}*t)*lt(mod(t\\,{FLASH_EVERY_S})\\,{1 / rate:.6f})':s=48000:d={seconds}"
    return encode(path, "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, "-c:v", "libx264",
                  "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "12", "-c:a", "aac", *extra)


def hdr(path: Path, transfer: str, size="160x96", seconds=0.5) -> str:
    """HEVC Main 10, BT.2020, PQ (smpte2084) or HLG (arib-std-b67): colour bars and a grey ramp,
    mapped into the HDR signal from SDR (100 nits) the way a camera's SDR-compatible grade is."""
    picture = f"smptehdbars=size={size}:rate=30:duration={seconds}"
    to_hdr = (f"zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t={transfer}:m=bt2020nc:p=bt2020:r=tv:npl=100,"
              "format=yuv420p10le")
    return encode(path, "-f", "lavfi", "-i", picture, "-vf", to_hdr, "-c:v", "libx265", "-x265-params", "log-level=error",
                  "-tag:v", "hvc1", "-color_primaries", "bt2020", "-color_trc", transfer, "-colorspace", "bt2020nc")


def several_audio_tracks(path: Path, seconds=1.0) -> str:
    """Video with three audio tracks: 300 Hz, 1 kHz (the default one) and 3 kHz."""
    tones = [300, 1000, 3000]
    args = ["-f", "lavfi", "-i", f"testsrc2=size=160x96:rate=30:duration={seconds}"]
    for hz in tones:
        args += ["-f", "lavfi", "-i", f"sine=frequency={hz}:duration={seconds}"]
    args += ["-map", "0:v"] + [a for i in range(len(tones)) for a in ("-map", f"{i + 1}:a")]
    args += ["-disposition:a:0", "0", "-disposition:a:1", "default", "-disposition:a:2", "0"]
    return encode(path, *args, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac")


# ---------------------------------------------------------------- measuring outputs


def shown_frames(path: str, size: tuple[int, int]) -> np.ndarray:
    """Every frame as a player shows it (ffmpeg, autorotate on), gray: N x H x W for size (W, H)."""
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", path, "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, size[1], size[0])


def audio_samples(path: str, track: int = 0) -> tuple[np.ndarray, int]:
    """An audio track decoded to float32 planes (channels x samples), and its sample rate."""
    import av

    with av.open(path) as c:
        stream = c.streams.audio[track]
        planes = [_planar(f) for f in c.decode(stream)]
        return np.concatenate(planes, axis=1).astype(np.float32), stream.rate


def _planar(frame) -> np.ndarray:
    samples = frame.to_ndarray()
    if not frame.format.is_planar:
        samples = samples.reshape(-1, len(frame.layout.channels)).T
    return samples


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    mono = samples.mean(axis=0)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.argmax(spectrum) * rate / len(mono))


def flash_times(path: str) -> list[float]:
    """Times (s) of the flashes: frames well above black (a spotlight's dimming leaves them so),
    where the frame before was not."""
    import av

    with av.open(path) as c:
        frames = [(float(f.time), f.to_ndarray(format="gray").mean()) for f in c.decode(video=0)]
    bright = [m > 50 for _, m in frames]  # black is 16, white 235
    return [t for i, (t, _) in enumerate(frames) if bright[i] and (i == 0 or not bright[i - 1])]


def beep_times(path: str) -> list[float]:
    """Onsets (s) of the beeps: where the audio envelope rises after at least 0.1 s of quiet."""
    import av

    with av.open(path) as c:
        stream = c.streams.audio[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    samples, rate = audio_samples(path)
    loud = np.abs(samples).max(axis=0) > 0.2
    onsets, quiet = [], rate
    for i, is_loud in enumerate(loud):
        if is_loud and quiet >= rate // 10:
            onsets.append(start + i / rate)
        quiet = 0 if is_loud else quiet + 1
    return onsets
