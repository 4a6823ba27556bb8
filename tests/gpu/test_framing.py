"""The framing processor: exact output size, crops that follow the keyframes, one model input size."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from gpu_worker.processors.framing import FramingProcessor, model_input_size
from gpu_worker.upscale import SRVGGNetCompact, Upscaler
from jobspec import FramingParams

RED, GREY = (0, 0, 255), (128, 128, 128)


def params(*keyframes, width=64, height=48, model="realesr-animevideov3"):
    return FramingParams(crop_keyframes=list(keyframes), output_width=width, output_height=height, upscale_model=model)


def kf(t, x, y, w, h, easing="linear"):
    return {"t": t, "x": x, "y": y, "w": w, "h": h, "easing": easing}


class NearestUpscaler(Upscaler):
    """A real Upscaler whose model is all zeros, so it returns exactly the nearest-neighbour
    upsampling (the compact net's residual): colours survive, and it records the input sizes."""

    def __init__(self):
        model = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=4)
        for p in model.parameters():
            torch.nn.init.zeros_(p)
        super().__init__(model, device="cpu")
        self.input_sizes = set()

    def upscale(self, frames):
        self.input_sizes |= {f.shape for f in frames}
        return super().upscale(frames)


def quadrant_frame(w=160, h=120):
    frame = np.full((h, w, 3), GREY, np.uint8)
    frame[: h // 2, w // 2 :] = RED  # top-right quadrant
    return frame


def ramp_frame(w=256, h=32, step=1):
    """Each pixel's value is its column times `step`, so a crop's mean tells where it was taken."""
    return np.repeat((np.arange(w) * step).astype(np.uint8)[None, :, None], h, 0).repeat(3, 2)


@pytest.mark.parametrize("model", ["realesr-animevideov3", "none"])
def test_crop_to_the_red_quadrant_gives_red(model):
    upscaler = None if model == "none" else NearestUpscaler()
    proc = FramingProcessor(params(kf(0, 0.5, 0, 0.5, 0.5), model=model), 160, 120, upscaler)
    out = proc.process([quadrant_frame()] * 2, [0.0, 1.0])
    assert all(np.array_equal(o, np.full((48, 64, 3), RED, np.uint8)) for o in out)


@pytest.mark.parametrize("size", [(64, 48), (100, 62), (16, 200), (1080, 1920)])
@pytest.mark.parametrize("model", ["realesr-animevideov3", "none"])
def test_output_size_is_exact(size, model):
    upscaler = None if model == "none" else NearestUpscaler()
    proc = FramingProcessor(params(kf(0, 0.1, 0.2, 0.3, 0.5), width=size[0], height=size[1], model=model), 160, 120, upscaler)
    assert (proc.out_width, proc.out_height) == size
    (out,) = proc.process([quadrant_frame()], [0.0])
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8


@pytest.mark.parametrize("easing,expected_x", [("linear", 0.375), ("ease_in", 0.1875), ("ease_out", 0.5625), ("hold", 0.0)])
def test_the_crop_follows_the_keyframes_and_their_easing(easing, expected_x):
    p = params(kf(0, 0, 0, 0.25, 1, easing), kf(2, 0.75, 0, 0.25, 1), width=64, height=32, model="none")
    proc = FramingProcessor(p, 256, 32)
    (out,) = proc.process([ramp_frame()], [1.0])
    # The mean column of a 64 px wide crop starting at x (of 256) is 256 * x + 31.5.
    assert out.mean() == pytest.approx(256 * expected_x + 31.5, abs=0.5)


def test_sub_pixel_pan_moves_the_crop_smoothly():
    # A 16 px crop panning by one pixel: values 4 * (column + offset) stay integers, so no rounding.
    p = params(kf(0, 0, 0, 0.25, 1), kf(1, 1 / 64, 0, 0.25, 1), width=16, height=32, model="none")
    proc = FramingProcessor(p, 64, 32)
    means = [o.mean() for o in proc.process([ramp_frame(64, step=4)] * 4, [0.0, 0.25, 0.5, 1.0])]
    assert means == pytest.approx([30, 31, 32, 34], abs=0.01)


def test_one_model_input_size_while_the_crop_zooms():
    upscaler = NearestUpscaler()
    p = params(kf(0, 0, 0, 1, 1), kf(1, 0.25, 0.25, 0.5, 0.5), width=160, height=120)
    proc = FramingProcessor(p, 160, 120, upscaler)
    proc.process([quadrant_frame()] * 3, [0.0, 0.4, 1.0])
    assert upscaler.input_sizes == {(30, 40, 3)}  # 160x120 / 4, the crops' 4:3 aspect


def test_model_input_keeps_the_crop_aspect_and_the_output_pixel_count():
    # A square crop to a 2:1 output: the model sees a square, the stretch happens after it.
    p = params(kf(0, 0, 0, 0.75, 1), width=200, height=100)
    w, h = model_input_size(p, 160, 120, 4)
    assert (w, h) == (35, 35) and abs(w * h - 200 * 100 / 16) < 40


def test_upscaler_must_match_the_model_setting():
    with pytest.raises(ValueError):
        FramingProcessor(params(kf(0, 0, 0, 1, 1)), 160, 120, None)
    with pytest.raises(ValueError):
        FramingProcessor(params(kf(0, 0, 0, 1, 1), model="none"), 160, 120, NearestUpscaler())


def test_frames_of_another_size_are_refused():
    proc = FramingProcessor(params(kf(0, 0, 0, 1, 1), model="none"), 160, 120)
    with pytest.raises(ValueError, match="expected 160x120"):
        proc.process([quadrant_frame(80, 60)], [0.0])


def test_no_model_never_imports_torch():
    code = (
        "import sys, numpy as np\n"
        "from jobspec import FramingParams\n"
        "from gpu_worker.processors.framing import FramingProcessor\n"
        "p = FramingParams(crop_keyframes=[dict(t=0, x=0, y=0, w=1, h=1)], upscale_model='none')\n"
        "FramingProcessor.from_params(p, 32, 32).process([np.zeros((32, 32, 3), np.uint8)], [0.0])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
