"""Comparing an output's frames with an uninterrupted render's: md5 where the cut is the same, PSNR
(and closer to its own frame than to its neighbours) where a resume cut the segments elsewhere."""

from __future__ import annotations

import hashlib

import av
import numpy as np

PSNR_MIN_DB = 32.0
PSNR_MARGIN_DB = 1.0


def decode_planes(path: str) -> tuple[list, bool]:
    """Every decoded video frame as a yuv420p array, and whether the file has an audio stream."""
    with av.open(path) as container:
        has_audio = bool(container.streams.audio)
        frames = [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]
    return frames, has_audio


def psnr(a, b) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def compare_frames(out: list, ref: list, exact_until: int) -> tuple[list[str], dict]:
    """Problems, and stats, comparing an output's frames with the reference's."""
    problems = []
    md5 = [hashlib.md5(f.tobytes()).hexdigest() for f in out]
    ref_md5 = [hashlib.md5(f.tobytes()).hexdigest() for f in ref]
    identical = sum(a == b for a, b in zip(md5, ref_md5))
    first_diff = next((i for i, (a, b) in enumerate(zip(md5, ref_md5)) if a != b), None)
    if first_diff is not None and first_diff < exact_until:
        problems.append(f"frame {first_diff} differs from the uninterrupted render (expected identical frames "
                        f"before frame {exact_until})")
    worst = 99.0
    for i in range(first_diff if first_diff is not None else len(out), min(len(out), len(ref))):
        own = psnr(out[i], ref[i])
        worst = min(worst, own)
        neighbours = [psnr(out[i], ref[j]) for j in (i - 1, i + 1) if 0 <= j < len(ref) and ref_md5[j] != ref_md5[i]]
        if own < PSNR_MIN_DB:
            problems.append(f"frame {i}: PSNR {own:.1f} dB against the uninterrupted render (< {PSNR_MIN_DB})")
            break
        if neighbours and own < max(neighbours) + PSNR_MARGIN_DB:
            problems.append(f"frame {i}: matches a neighbouring reference frame ({max(neighbours):.1f} dB) about as "
                            f"well as its own ({own:.1f} dB): frames out of place")
            break
    return problems, {"identical": identical, "psnr_min": worst}
