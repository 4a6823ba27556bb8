"""Inputs that once took a pod down: a small H.264 file whose SPS claims a huge frame (the bytes are a
64x64 stream; only its sequence parameter set is rewritten), and real clips far over the limits."""

from __future__ import annotations

import re
from pathlib import Path

from gpu_worker.media import run_ffmpeg

from ..clips import make_clip


class _Bits:
    def __init__(self, data: bytes):
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def u(self, n: int) -> int:
        value = int(self.bits[self.pos : self.pos + n] or "0", 2)
        self.pos += n
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bits[self.pos] == "0":
            zeros += 1
            self.pos += 1
        return self.u(zeros + 1) - 1


def _ue(value: int) -> str:
    code = f"{value + 1:b}"
    return "0" * (len(code) - 1) + code


def _unescape(nal: bytes) -> bytes:
    return re.sub(b"\x00\x00\x03", b"\x00\x00", nal)


def _escape(rbsp: bytes) -> bytes:
    return re.sub(b"\x00\x00(?=[\x00-\x03])", b"\x00\x00\x03", rbsp)


def resize_sps(nal: bytes, width: int, height: int) -> bytes:
    """An SPS NAL unit (header byte first) with its frame size set to width x height (multiples of 16).
    Understands what x264 writes for the baseline profile."""
    bits = _Bits(_unescape(nal[1:]))
    profile = bits.u(8)
    if profile not in (66, 77, 88):
        raise ValueError(f"profile {profile}: only baseline/main/extended SPS are rewritten")
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        raise ValueError("pic_order_cnt_type 1 is not handled")
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    head = bits.bits[: bits.pos]
    bits.ue(), bits.ue()  # the old pic_width_in_mbs_minus1, pic_height_in_map_units_minus1
    tail = bits.bits[bits.pos :].rstrip("0")[:-1]  # the rest, without the rbsp stop bit and padding
    out = head + _ue(width // 16 - 1) + _ue(height // 16 - 1) + tail + "1"
    out += "0" * (-len(out) % 8)
    return nal[:1] + _escape(int(out, 2).to_bytes(len(out) // 8, "big"))


def huge_sps_clip(folder: Path, width: int = 16000, height: int = 16000) -> Path:
    """A few KB of 64x64 H.264 in an MP4 that says it is width x height."""
    small = folder / "small.h264"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:rate=30:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
               "-profile:v", "baseline", "-f", "h264", str(small))
    nals = re.split(b"(?=\x00\x00\x00\x01|(?<!\x00)\x00\x00\x01)", small.read_bytes())
    patched = b"".join(_patch(nal, width, height) for nal in nals)
    raw = folder / "huge.h264"
    raw.write_bytes(patched)
    out = folder / f"sps_{width}x{height}.mp4"
    run_ffmpeg("-f", "h264", "-framerate", "30", "-i", str(raw), "-c", "copy", str(out))
    return out


def _patch(nal: bytes, width: int, height: int) -> bytes:
    start = nal.find(b"\x00\x00\x01")
    if start < 0 or nal[start + 3] & 0x1F != 7:
        return nal
    return nal[: start + 3] + resize_sps(nal[start + 3 :], width, height)


def big_frame_clip(folder: Path, side: int = 8192) -> Path:
    """A real side x side H.264 video (black, one frame)."""
    out = folder / f"black_{side}.mp4"
    run_ffmpeg("-f", "lavfi", "-i", f"color=black:size={side}x{side}:rate=1:duration=1", "-c:v", "libx264",
               "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out))
    return out


def long_tiny_clip(folder: Path, minutes: float = 10) -> Path:
    """A 64x64 30 fps clip, `minutes` long."""
    return make_clip(folder / f"tiny_{minutes}min.mp4", minutes * 60, size="64x64", audio=False)
