"""One look at a GPU machine, in at most a few minutes: what the README's GPU figures need.

Prints torch and CUDA versions; fp16 and fp32 frames/s of each upscale model on a 480x270 crop to
1080x1920 (the model runs at 480x270, the crop's size, then the frame is fitted to the output); the
upscale stage / model-only ratio (bench/upscale_stage.py); whether h264_nvenc encodes; and the
overlay export / bare transcode ratio with the best encoder present (bench/overlay_vs_transcode.py).

    .venv/bin/python -m bench.gpu_check                       # CUDA if present
    .venv/bin/python -m bench.gpu_check --device cpu --tiny   # seconds, on any machine (make test runs it)
"""

from __future__ import annotations

import argparse
import platform
import time

from bench.overlay_vs_transcode import measure as overlay_measure
from bench.upscale_stage import ModelOnly, framing_params, make_upscaler, measure, timed

import numpy as np
import torch

from gpu_worker.media import choose_codec, ffmpeg_exe
from gpu_worker.processors.framing import FramingProcessor
from gpu_worker.upscale import MODELS, Upscaler

FULL = {"input": (480, 270), "output": (1080, 1920), "frames": 16, "overlay_s": 10, "overlay_size": "1280x720"}
TINY = {"input": (16, 9), "output": (36, 64), "frames": 4, "overlay_s": 1, "overlay_size": "320x180"}


def versions(device: torch.device) -> None:
    print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda or '-'}, "
          f"cuDNN {torch.backends.cudnn.version() or '-'}, ffmpeg {ffmpeg_exe()}")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        print(f"device {props.name}, {props.total_memory / 2**30:.1f} GiB, sm_{props.major}{props.minor}")
    else:
        print(f"device cpu ({torch.get_num_threads()} threads)")


def upscaler(model: str, device: torch.device, half: bool, batch: int) -> Upscaler:
    """The model with its fetched weights (random ones if absent: the speed is the same)."""
    return make_upscaler(argparse.Namespace(model=model, device=device, batch=batch), half)[0]


def model_fps(up: Upscaler, size: tuple[int, int], frames: int, batch: int) -> float:
    """Frames/s of the model alone on a batch already on the device (after a warm-up batch):
    bench/upscale_stage.py's ModelOnly."""
    model = ModelOnly(up, argparse.Namespace(input=size, batch=batch))
    model()
    batches = max(1, frames // batch)
    return batches * batch / sum(timed(model) for _ in range(batches))


def stage_ratio(up: Upscaler, model: str, sizes: dict, batch: int) -> float:
    """Upscale stage / model only (median batches, alternating): bench/upscale_stage.py's measure."""
    iw, ih = sizes["input"]
    args = argparse.Namespace(input=(iw, ih), source=(iw * 8 // 3, ih * 8 // 3), batch=batch, repeats=1, model=model)
    proc = FramingProcessor(framing_params(args, up.scale), *args.source, up)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (args.source[1], args.source[0], 3), dtype=np.uint8)
              for _ in range(max(batch * 2, sizes["frames"]))]
    model_s, stage_s = measure(up, proc, frames, args)
    return float(np.median(model_s) / np.median(stage_s))


def overlay_ratio(sizes: dict, repeats: int) -> tuple[str, float]:
    """Overlay export fps / bare transcode fps with the best encoder: bench/overlay_vs_transcode.py."""
    codec = choose_codec()
    return codec, overlay_measure(codec, sizes["overlay_s"], sizes["overlay_size"], repeats)[0]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke run that takes seconds")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="overlay benchmark runs per case")
    args = ap.parse_args(argv)
    sizes = TINY if args.tiny else FULL
    device = torch.device(args.device)
    started = time.perf_counter()
    versions(device)

    (iw, ih), (ow, oh) = sizes["input"], sizes["output"]
    print(f"\nmodel frames/s, {iw}x{ih} in (x4), fitted to {ow}x{oh}, batch {args.batch}")
    precisions = [("fp16", True), ("fp32", False)] if device.type == "cuda" else [("fp32", False)]
    for model in MODELS:
        fps = {name: model_fps(upscaler(model, device, half, args.batch), (iw, ih), sizes["frames"], args.batch)
               for name, half in precisions}
        print(f"  {model:22}" + "".join(f"  {name} {value:8.2f}" for name, value in fps.items()))

    model = "realesr-animevideov3"
    ratio = stage_ratio(upscaler(model, device, device.type == "cuda", args.batch), model, sizes, args.batch)
    print(f"\nupscale stage / model only ({model}): {ratio:.3f} (target >= 0.9)")
    print(f"h264_nvenc works: {'yes' if choose_codec() == 'h264_nvenc' else 'no'}")
    codec, ratio = overlay_ratio(sizes, 1 if args.tiny else args.repeats)
    print(f"overlay export / bare transcode ({codec}, {sizes['overlay_size']}): {ratio:.2f} (target >= 0.9)")
    print(f"\ngpu_check done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
