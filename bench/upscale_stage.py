"""How much of the model's speed the whole upscale stage keeps.

Measures in one run, same model, device, batch and input size:
  model only: a float tensor already on the device in, the model's output out (no conversions);
  stage:      uint8 BGR source frames in, FramingProcessor (crop, resize, upscale, resize) out.
and prints stage fps / model fps (target >= 0.9). Uses the fetched weights when present (the speed
does not depend on them). Runs unchanged on CUDA (fp16, channels_last) and on the CPU (fp32).

    .venv/bin/python -m bench.upscale_stage [--model realesr-animevideov3] [--input 120x68]
        [--source 640x360] [--frames 32] [--batch 4] [--repeats 3] [--device cuda|cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from gpu_worker.processors.framing import FramingProcessor
from gpu_worker.upscale import MODELS, Upscaler, default_weights_dir, load_upscaler
from jobspec import FramingParams


def size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def make_upscaler(args, half: bool | None = None) -> tuple[Upscaler, str]:
    """args.model with its fetched weights (random ones if absent: the speed is the same) on
    args.device; half: fp16 (default: on CUDA only)."""
    spec = MODELS[args.model]
    if (default_weights_dir() / spec.weights).exists():
        return load_upscaler(args.model, device=args.device, half=half, batch_size=args.batch), "fetched weights"
    torch.manual_seed(0)
    return Upscaler(spec.arch().eval(), device=args.device, half=half, batch_size=args.batch), "random weights"


def framing_params(args, scale: int) -> FramingParams:
    """A crop with the output's aspect, panning across the source, 1.5x the model input's size."""
    (iw, ih), (sw, sh) = args.input, args.source
    w, h = 1.5 * iw / sw, 1.5 * ih / sh
    return FramingParams(
        crop_keyframes=[dict(t=0, x=0, y=0, w=w, h=h), dict(t=1, x=1 - w, y=1 - h, w=w, h=h)],
        output_width=iw * scale, output_height=ih * scale, upscale_model=args.model,
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ModelOnly:
    """The model on one batch already on the device, in the layout the stage hands it."""

    def __init__(self, up: Upscaler, args):
        w, h = args.input
        self.up = up
        self.x = torch.rand(args.batch, 3, h, w, device=up.device, dtype=up.dtype)
        self.x = self.x.contiguous(memory_format=torch.channels_last)

    def __call__(self) -> None:
        with torch.inference_mode():
            self.up.model(self.x)
        sync(self.up.device)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def measure(up: Upscaler, proc: FramingProcessor, frames: list[np.ndarray], args) -> tuple[list, list]:
    """Seconds per batch for the model and for the stage, alternating batch by batch, so both see
    the same load on a shared machine."""
    model = ModelOnly(up, args)
    times = [i / len(frames) for i in range(len(frames))]
    model()  # warm-ups: cudnn.benchmark tunes here
    proc.process(frames[: args.batch], times[: args.batch])
    model_s, stage_s = [], []
    for _ in range(args.repeats):
        for i in range(0, len(frames) - args.batch + 1, args.batch):
            model_s.append(timed(model))
            stage_s.append(timed(proc.process, frames[i : i + args.batch], times[i : i + args.batch]))
    return model_s, stage_s


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="realesr-animevideov3", choices=sorted(MODELS))
    ap.add_argument("--input", type=size, default=(120, 68), help="model input WxH")
    ap.add_argument("--source", type=size, default=(640, 360), help="source frame WxH")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="passes over the frames")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is steadier on a busy machine)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    up, weights = make_upscaler(args)
    proc = FramingProcessor(framing_params(args, up.scale), *args.source, up)
    assert proc.model_size == args.input, proc.model_size
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (args.source[1], args.source[0], 3), dtype=np.uint8) for _ in range(args.frames)]

    model_s, stage_s = measure(up, proc, frames, args)
    print(f"device {up.device} ({torch.get_num_threads()} threads) {up.dtype}, {args.model} ({weights}), batch {args.batch}")
    print(f"source {args.source[0]}x{args.source[1]} -> model {args.input[0]}x{args.input[1]} -> x{up.scale} "
          f"-> output {proc.out_width}x{proc.out_height}; {len(model_s)} batches each, alternating")
    # On a shared machine the best batches show the code's cost; the medians include the neighbours.
    print("fps          median batch   best batch")
    for label, secs in (("model only", model_s), ("full stage", stage_s)):
        print(f"{label:12} {args.batch / statistics.median(secs):12.2f} {args.batch / min(secs):12.2f}")
    print(f"{'stage/model':12} {statistics.median(model_s) / statistics.median(stage_s):12.3f} "
          f"{min(model_s) / min(stage_s):12.3f}   (target >= 0.9)")

if __name__ == "__main__":
    main()
