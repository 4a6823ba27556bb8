"""bench/gpu_check.py, the script a GPU machine runs for the README's figures, runs here on the CPU
on a tiny input, so that it cannot rot before a GPU is at hand."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_on_the_cpu_and_reports_every_figure():
    out = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--device", "cpu", "--tiny"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for line in ("torch 2.", "realesr-animevideov3    fp32", "realesrgan-x4plus       fp32",
                 "upscale stage / model only", "h264_nvenc works: ", "overlay export / bare transcode ("):
        assert line in text, text
