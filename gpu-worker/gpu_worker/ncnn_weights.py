"""Read the weights of an ncnn model (`.param` text + `.bin` blob) into a PyTorch state dict.

Real-ESRGAN's official ncnn exports list their Convolution and PReLU layers in the same order in which
our modules register them, so the blobs are assigned in order, each checked against the module's shape.
Only the layer types those exports use are understood; anything else is an error, and so is a byte
left over.
"""

from __future__ import annotations

import struct

import numpy as np
import torch
from torch import nn

MAGIC = "7767517"
FP16_TAG = 0x01306B47  # ncnn's marker for an fp16 weight blob
FP32_TAG = 0x00000000
WEIGHTLESS = {"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle"}


def parse_layers(param_text: str) -> list[tuple[str, str, dict[str, str]]]:
    """(type, name, params) for each layer of an ncnn `.param` file."""
    lines = [ln.split() for ln in param_text.splitlines() if ln.strip()]
    if not lines or lines[0] != [MAGIC]:
        raise ValueError("not an ncnn .param file (bad magic)")
    layers = []
    for typ, name, n_in, n_out, *rest in lines[2:]:
        params = dict(kv.split("=", 1) for kv in rest[int(n_in) + int(n_out) :])
        layers.append((typ, name, params))
    return layers


class _Blob:
    """Sequential reader over the `.bin` data."""

    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def raw_fp32(self, n: int) -> np.ndarray:
        a = np.frombuffer(self.data, "<f4", n, self.offset)
        self.offset += 4 * n
        return a.astype(np.float32)

    def tagged(self, n: int) -> np.ndarray:
        """A weight blob: a 4-byte type tag, then fp16 (padded to 4 bytes) or fp32 values."""
        (tag,) = struct.unpack_from("<I", self.data, self.offset)
        self.offset += 4
        if tag == FP32_TAG:
            return self.raw_fp32(n)
        if tag != FP16_TAG:
            raise ValueError(f"unsupported weight encoding {tag:#010x} (only fp16 and fp32)")
        a = np.frombuffer(self.data, "<f2", n, self.offset).astype(np.float32)
        self.offset += (2 * n + 3) // 4 * 4
        return a


def read_blobs(param_text: str, bin_data: bytes) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """('conv', weight as (out channels, rest), bias or None) and ('prelu', slopes, None) in file order."""
    blob, out = _Blob(bin_data), []
    for typ, name, p in parse_layers(param_text):
        if typ == "Convolution":
            if p.get("8", "0") != "0":
                raise ValueError(f"{name}: int8-quantised convolutions are not supported")
            cout = int(p["0"])
            weight = blob.tagged(int(p["6"])).reshape(cout, -1)
            bias = blob.raw_fp32(cout) if p.get("5", "0") == "1" else None
            out.append(("conv", weight, bias))
        elif typ == "PReLU":
            out.append(("prelu", blob.raw_fp32(int(p["0"])), None))
        elif typ not in WEIGHTLESS:
            raise ValueError(f"{name}: layer type {typ} is not understood")
    if blob.offset != len(bin_data):
        raise ValueError(f"{len(bin_data) - blob.offset} bytes of the .bin were not consumed")
    return out


def to_state_dict(param_text: str, bin_data: bytes, model: nn.Module) -> dict[str, torch.Tensor]:
    """The ncnn weights as a state dict for `model` (an SRVGGNetCompact or RRDBNet of matching size)."""
    blobs = read_blobs(param_text, bin_data)
    targets = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.PReLU))]
    if len(targets) != len(blobs):
        raise ValueError(f"the ncnn model has {len(blobs)} weighted layers, the module {len(targets)}")
    sd = {}
    for (name, module), (kind, weight, bias) in zip(targets, blobs):
        if kind != ("conv" if isinstance(module, nn.Conv2d) else "prelu"):
            raise ValueError(f"{name}: ncnn has a {kind} layer here")
        if weight.shape[0] != module.weight.shape[0] or weight.size != module.weight.numel():
            raise ValueError(f"{name}: {weight.shape} values for a weight of shape {tuple(module.weight.shape)}")
        sd[f"{name}.weight"] = torch.from_numpy(weight).reshape(module.weight.shape)
        if bias is not None:
            sd[f"{name}.bias"] = torch.from_numpy(bias)
    return sd
