"""Load and run a Real-ESRGAN super-resolution model.

The two architectures are written here from the published design (Real-ESRGAN, Wang et al. 2021),
with the official state-dict key names, so official `.pth` files and ours load with strict=True.
Weights are never downloaded here: they sit in a weights dir (scripts/fetch_weights.py fills it),
pinned by sha256.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import FatalJobError

WEIGHTS_DIR_ENV = "GPU_WORKER_WEIGHTS_DIR"
SHA256SUMS = "SHA256SUMS"


class WeightsError(FatalJobError):
    """A weights file that is missing, altered or of an unknown architecture: retrying cannot help."""


# ---------------------------------------------------------------- architectures


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class SRVGGNetCompact(nn.Module):
    """The compact net (realesr-animevideov3): 3x3 convs + PReLU at the input
    resolution, a pixel shuffle to the output size, plus the nearest-upsampled input as a residual."""

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4):
        super().__init__()
        self.scale = upscale
        layers = [_conv(num_in_ch, num_feat), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [_conv(num_feat, num_feat), nn.PReLU(num_feat)]
        layers.append(_conv(num_feat, num_out_ch * upscale * upscale))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        out = F.pixel_shuffle(self.body(x), self.scale)
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")


def _lrelu(x):
    return F.leaky_relu(x, 0.2)


class DenseBlock(nn.Module):
    """Five convs, each seeing the block input and every earlier conv's output."""

    def __init__(self, num_feat: int, num_grow_ch: int):
        super().__init__()
        for i in range(4):
            self.add_module(f"conv{i + 1}", _conv(num_feat + i * num_grow_ch, num_grow_ch))
        self.conv5 = _conv(num_feat + 4 * num_grow_ch, num_feat)

    def forward(self, x):
        *grow, last = self.children()
        feats = [x]
        for conv in grow:
            feats.append(_lrelu(conv(torch.cat(feats, 1))))
        return x + 0.2 * last(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, their sum scaled down by 0.2."""

    def __init__(self, num_feat: int, num_grow_ch: int):
        super().__init__()
        self.rdb1 = DenseBlock(num_feat, num_grow_ch)
        self.rdb2 = DenseBlock(num_feat, num_grow_ch)
        self.rdb3 = DenseBlock(num_feat, num_grow_ch)

    def forward(self, x):
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """ESRGAN's generator (realesrgan-x4plus). The body always upsamples x4; for scale 2 or 1 the
    input is pixel-unshuffled first, which is why conv_first then takes 12 or 48 channels."""

    def __init__(self, num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32):
        super().__init__()
        self.scale = scale
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        self.conv_first = _conv(num_in_ch * self.unshuffle**2, num_feat)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = _conv(num_feat, num_feat)
        self.conv_up1 = _conv(num_feat, num_feat)
        self.conv_up2 = _conv(num_feat, num_feat)
        self.conv_hr = _conv(num_feat, num_feat)
        self.conv_last = _conv(num_feat, num_out_ch)

    def forward(self, x):
        h, w = x.shape[-2:]
        if self.unshuffle > 1:
            u = self.unshuffle
            x = F.pixel_unshuffle(F.pad(x, (0, -w % u, 0, -h % u), mode="replicate"), u)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = _lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = _lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(_lrelu(self.conv_hr(feat)))
        return out[..., : h * self.scale, : w * self.scale]


@dataclass(frozen=True)
class ModelSpec:
    arch: Callable[[], nn.Module]
    scale: int
    weights: str  # file name in the weights dir (the official release's name)


MODELS = {
    "realesr-animevideov3": ModelSpec(
        partial(SRVGGNetCompact, num_feat=64, num_conv=16, upscale=4), 4, "realesr-animevideov3.pth"
    ),
    "realesrgan-x4plus": ModelSpec(
        partial(RRDBNet, scale=4, num_feat=64, num_block=23, num_grow_ch=32), 4, "RealESRGAN_x4plus.pth"
    ),
}


# ---------------------------------------------------------------- loading


def default_weights_dir() -> Path:
    default = Path(__file__).resolve().parents[2] / ".cache" / "weights"
    return Path(os.environ.get(WEIGHTS_DIR_ENV) or default)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_sha256sums(weights_dir: Path) -> dict[str, str]:
    """File name -> sha256 from `sha256sum`-style lines; empty if there is no SHA256SUMS file."""
    path = Path(weights_dir) / SHA256SUMS
    if not path.exists():
        return {}
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {name.lstrip("*"): digest for digest, name in pairs}


def arch_from_state_dict(sd: dict[str, torch.Tensor]) -> nn.Module:
    """Build the (untrained) module that a state dict of either architecture fits."""
    if "conv_first.weight" in sd:
        num_feat, in_ch = sd["conv_first.weight"].shape[:2]
        out_ch = sd["conv_last.weight"].shape[0]
        num_block = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("body."))
        return RRDBNet(
            out_ch, out_ch, scale={1: 4, 4: 2, 16: 1}[in_ch // out_ch], num_feat=num_feat,
            num_block=num_block, num_grow_ch=sd["body.0.rdb1.conv1.weight"].shape[0],
        )
    if "body.0.weight" in sd:
        convs = sorted(int(k.split(".")[1]) for k, v in sd.items() if k.endswith(".weight") and v.ndim == 4)
        num_feat, in_ch = sd["body.0.weight"].shape[:2]
        scale = math.isqrt(sd[f"body.{convs[-1]}.weight"].shape[0] // in_ch)
        return SRVGGNetCompact(in_ch, in_ch, num_feat, num_conv=len(convs) - 2, upscale=scale)
    raise WeightsError("unknown architecture: neither RRDBNet (conv_first.*) nor SRVGGNetCompact (body.0.*) keys")


def load_model(path, arch: Callable[[], nn.Module] | None = None, sha256: str | None = None) -> nn.Module:
    """A model in eval mode on the CPU, fp32. `arch` builds the module (detected from the keys when
    None); `sha256` pins the file's content."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no weights file at {path}")
    data = path.read_bytes()  # hash and load the same bytes
    if sha256 is not None and sha256_of(data) != sha256.lower():
        raise WeightsError(f"{path}: sha256 {sha256_of(data)} does not match the pinned {sha256.lower()}")
    ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    sd = ckpt.get("params_ema", ckpt.get("params", ckpt))
    model = arch() if arch is not None else arch_from_state_dict(sd)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{path} does not fit {type(model).__name__}: {e}") from None
    return model.eval().requires_grad_(False)


# ---------------------------------------------------------------- inference


class Upscaler:
    """Runs a model on batches of uint8 BGR frames: fp16 on CUDA, fp32 on the CPU, channels_last on
    both (faster on each). Inputs larger than `tile` pixels a side are cut into tiles, with `tile_pad`
    pixels of context each side, to bound memory; 40 covers the receptive field of the compact net
    (18 pixels), so for it tiling changes nothing."""

    def __init__(self, model: nn.Module, device=None, batch_size: int = 4, tile: int = 512, tile_pad: int = 40,
                 half: bool | None = None, gpu_memory_fraction: float = 0.9):
        """half: fp16 (default: on CUDA only). On CUDA, torch's allocator is held to
        `gpu_memory_fraction` of the GPU: a job that needs more fails (out of memory) instead of
        starving the pod's other work."""
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.cuda = self.device.type == "cuda"
        self.dtype = torch.float16 if (self.cuda if half is None else half) else torch.float32
        self.scale = model.scale
        self.batch_size, self.tile, self.tile_pad = batch_size, tile, tile_pad
        self.model = model.to(self.device, self.dtype, memory_format=torch.channels_last).eval()
        self._pinned = None
        if self.cuda:
            torch.backends.cudnn.benchmark = True  # shapes are static, so the tuning is paid once
            torch.cuda.set_per_process_memory_fraction(gpu_memory_fraction, self.device)

    def upscale(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """HxWx3 uint8 BGR frames, all of one size -> (H*scale)x(W*scale)x3 uint8 BGR."""
        if len({f.shape for f in frames}) > 1:
            raise ValueError(f"frames of different sizes in one call: {sorted({f.shape for f in frames})}")
        out = []
        with torch.inference_mode():
            for i in range(0, len(frames), self.batch_size):
                out.extend(self._upscale_batch(frames[i : i + self.batch_size]))
        return out

    def _upscale_batch(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        x = self._to_device(frames)  # N,H,W,3 uint8
        # NHWC permuted to NCHW is channels_last in memory; flip turns BGR into the model's RGB.
        x = x.flip(-1).permute(0, 3, 1, 2).to(self.dtype).div_(255)
        y = self.run(x)
        y = y.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).flip(-1)
        return list(y.cpu().numpy())

    def _to_device(self, frames: list[np.ndarray]) -> torch.Tensor:
        if not self.cuda:
            return torch.from_numpy(np.stack(frames))
        shape = (self.batch_size, *frames[0].shape)
        if self._pinned is None or self._pinned.shape != shape:
            self._pinned = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        # Reusing the buffer is safe: the previous batch's copy finished when its result came back.
        host = self._pinned[: len(frames)]
        np.stack(frames, out=host.numpy())
        return host.to(self.device, non_blocking=True)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW float in [0, 1] on the device -> the model's output, tiled when x is large."""
        h, w = x.shape[-2:]
        if not self.tile or (h <= self.tile and w <= self.tile):
            return self.model(x)
        s, t, p = self.scale, self.tile, self.tile_pad
        out = torch.empty((x.shape[0], 3, h * s, w * s), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                py, px = max(y0 - p, 0), max(x0 - p, 0)
                piece = self.model(x[:, :, py : min(y1 + p, h), px : min(x1 + p, w)])
                out[:, :, y0 * s : y1 * s, x0 * s : x1 * s] = piece[
                    :, :, (y0 - py) * s : (y1 - py) * s, (x0 - px) * s : (x1 - px) * s
                ]
        return out


def load_upscaler(model_name: str, weights_dir=None, device=None, sha256: str | None = None, **kwargs) -> Upscaler:
    """The Upscaler for a job's `upscale_model` (kwargs go to Upscaler). The pin is `sha256` when
    given, else the file's line in the weights dir's SHA256SUMS (production bakes both in)."""
    if model_name not in MODELS:
        raise WeightsError(f"unknown upscale model {model_name!r}; known: {', '.join(MODELS)}")
    spec = MODELS[model_name]
    weights_dir = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    pin = sha256 or read_sha256sums(weights_dir).get(spec.weights)
    model = load_model(weights_dir / spec.weights, arch=spec.arch, sha256=pin)
    return Upscaler(model, device=device, **kwargs)
