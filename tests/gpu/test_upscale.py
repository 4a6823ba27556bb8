"""The super-resolution loader and runner, on tiny models saved by the tests themselves, plus one check
of the real converted animevideov3 weights when the weights dir has them."""

from functools import partial

import cv2
import numpy as np
import pytest
import torch

from gpu_worker.upscale import (
    MODELS,
    SHA256SUMS,
    ModelSpec,
    RRDBNet,
    SRVGGNetCompact,
    Upscaler,
    WeightsError,
    default_weights_dir,
    load_model,
    load_upscaler,
    sha256_of,
)

TINY = partial(SRVGGNetCompact, num_feat=8, num_conv=2)


def tiny_state_dict(seed=0):
    torch.manual_seed(seed)
    return TINY().state_dict()


@pytest.fixture
def tiny_path(tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save({"params_ema": tiny_state_dict()}, path)
    return path


def frames(n, h=12, w=10, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


# ---------------------------------------------------------------- loading


def test_detects_the_architecture_and_loads_every_weight(tiny_path):
    model = load_model(tiny_path)
    assert isinstance(model, SRVGGNetCompact) and model.scale == 4 and not model.training
    for k, v in tiny_state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


@pytest.mark.parametrize("wrap", [lambda sd: {"params": sd}, lambda sd: sd])
def test_params_key_or_bare_state_dict(tmp_path, wrap):
    torch.save(wrap(tiny_state_dict()), tmp_path / "m.pth")
    assert isinstance(load_model(tmp_path / "m.pth", arch=TINY), SRVGGNetCompact)


def test_detects_rrdbnet_with_pixel_unshuffle(tmp_path):
    torch.save({"params_ema": RRDBNet(scale=2, num_feat=8, num_block=2, num_grow_ch=4).state_dict()}, tmp_path / "r.pth")
    model = load_model(tmp_path / "r.pth")
    assert isinstance(model, RRDBNet) and model.scale == 2 and len(model.body) == 2
    assert model(torch.rand(1, 3, 7, 9)).shape == (1, 3, 14, 18)  # odd sizes are padded for the unshuffle


def test_strict_loading_rejects_extra_missing_and_misshapen_keys(tmp_path):
    sd = tiny_state_dict()
    cases = {
        "extra": {**sd, "body.99.weight": torch.zeros(1)},
        "missing": {k: v for k, v in sd.items() if k != "body.1.weight"},
    }
    for name, bad in cases.items():
        torch.save({"params": bad}, tmp_path / f"{name}.pth")
        with pytest.raises(WeightsError, match="does not fit"):
            load_model(tmp_path / f"{name}.pth", arch=TINY)
    torch.save({"params": sd}, tmp_path / "ok.pth")
    with pytest.raises(WeightsError, match="size mismatch"):
        load_model(tmp_path / "ok.pth", arch=partial(SRVGGNetCompact, num_feat=16, num_conv=2))


def test_unknown_keys_and_missing_files_are_clear_errors(tmp_path):
    torch.save({"params": {"conv.weight": torch.zeros(1)}}, tmp_path / "x.pth")
    with pytest.raises(WeightsError, match="unknown architecture"):
        load_model(tmp_path / "x.pth")
    with pytest.raises(WeightsError, match="no weights file"):
        load_model(tmp_path / "absent.pth")


def test_sha256_pin(tiny_path):
    load_model(tiny_path, sha256=sha256_of(tiny_path.read_bytes()).upper())
    with pytest.raises(WeightsError, match="does not match the pinned"):
        load_model(tiny_path, sha256="0" * 64)


def test_load_upscaler_pins_from_sha256sums(tmp_path, monkeypatch):
    monkeypatch.setitem(MODELS, "tiny", ModelSpec(TINY, 4, "tiny.pth"))
    torch.save({"params": tiny_state_dict()}, tmp_path / "tiny.pth")
    (tmp_path / SHA256SUMS).write_text(f"{sha256_of((tmp_path / 'tiny.pth').read_bytes())}  tiny.pth\n")
    assert load_upscaler("tiny", tmp_path, device="cpu").scale == 4
    (tmp_path / SHA256SUMS).write_text(f"{'f' * 64}  tiny.pth\n")
    with pytest.raises(WeightsError, match="pinned"):
        load_upscaler("tiny", tmp_path, device="cpu")
    with pytest.raises(WeightsError, match="unknown upscale model"):
        load_upscaler("nope", tmp_path)


def test_weights_dir_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GPU_WORKER_WEIGHTS_DIR", str(tmp_path))
    assert default_weights_dir() == tmp_path
    monkeypatch.delenv("GPU_WORKER_WEIGHTS_DIR")
    assert default_weights_dir().parts[-2:] == (".cache", "weights")


@pytest.mark.parametrize("name,millions", [
    ("realesr-animevideov3", 0.62), ("realesrgan-x4plus", 16.70),
])
def test_official_configs_have_the_official_parameter_counts(name, millions):
    model = MODELS[name].arch()
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == millions
    assert model.scale == MODELS[name].scale


# ---------------------------------------------------------------- running


def test_scale_and_output_shape(tiny_path):
    out = Upscaler(load_model(tiny_path), device="cpu").upscale(frames(3))
    assert len(out) == 3
    assert all(o.shape == (48, 40, 3) and o.dtype == np.uint8 for o in out)


def test_batch_equals_per_frame(tiny_path):
    model, inputs = load_model(tiny_path), frames(5)
    batched = Upscaler(model, device="cpu", batch_size=3).upscale(inputs)
    single = Upscaler(model, device="cpu", batch_size=1).upscale(inputs)
    for b, s in zip(batched, single):
        assert np.abs(b.astype(int) - s).max() <= 1


def test_tiling_matches_untiled(tiny_path):
    # tile_pad 4 covers the tiny net's receptive field (4 stacked 3x3 convs), so tiles see all they need.
    model, inputs = load_model(tiny_path), frames(2, h=37, w=45)
    whole = Upscaler(model, device="cpu", tile=0).upscale(inputs)
    tiled = Upscaler(model, device="cpu", tile=16, tile_pad=4).upscale(inputs)
    for a, b in zip(whole, tiled):
        assert np.abs(a.astype(int) - b).max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_matches_the_cpu(tiny_path):
    model, inputs = load_model(tiny_path), frames(6, h=33, w=47)
    cpu = Upscaler(model, device="cpu").upscale(inputs)
    cuda = Upscaler(load_model(tiny_path), device="cuda", batch_size=4).upscale(inputs)
    for a, b in zip(cpu, cuda):
        assert b.shape == a.shape and np.abs(a.astype(int) - b).max() <= 2


def test_frames_of_different_sizes_are_refused(tiny_path):
    with pytest.raises(ValueError, match="different sizes"):
        Upscaler(load_model(tiny_path), device="cpu").upscale(frames(1) + frames(1, h=8))


# ---------------------------------------------------------------- the real weights


def cartoon(w=256, h=192):
    """Flat colours, anti-aliased outlines and text: the kind of frame animevideov3 is made for."""
    img = np.full((h, w, 3), (230, 200, 160), np.uint8)
    cv2.circle(img, (w // 3, h // 2), h // 4, (40, 60, 220), -1, cv2.LINE_AA)
    cv2.circle(img, (w // 3, h // 2), h // 4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.rectangle(img, (w // 2, h // 5), (w * 7 // 8, h * 3 // 4), (60, 180, 60), -1)
    cv2.rectangle(img, (w // 2, h // 5), (w * 7 // 8, h * 3 // 4), (0, 0, 0), 3)
    cv2.line(img, (0, h - 10), (w, h // 3), (20, 20, 20), 4, cv2.LINE_AA)
    cv2.putText(img, "GPU 42", (w // 10, h // 6), cv2.FONT_HERSHEY_SIMPLEX, h / 150, (255, 255, 255), 2, cv2.LINE_AA)
    return img


def test_real_animevideov3_beats_bicubic_and_random_weights_do_not():
    spec = MODELS["realesr-animevideov3"]
    weights_dir = default_weights_dir()
    if not (weights_dir / spec.weights).exists():
        pytest.skip(f"no {spec.weights} in {weights_dir}: run scripts/fetch_weights.py")
    original = cartoon()
    small = cv2.resize(original, (64, 48), interpolation=cv2.INTER_AREA)
    bicubic = cv2.PSNR(original, cv2.resize(small, (256, 192), interpolation=cv2.INTER_CUBIC))
    real = cv2.PSNR(original, load_upscaler("realesr-animevideov3", weights_dir, device="cpu").upscale([small])[0])
    torch.manual_seed(0)
    random = cv2.PSNR(original, Upscaler(spec.arch().eval(), device="cpu").upscale([small])[0])
    assert real > bicubic + 1, (real, bicubic)
    assert random < bicubic, (random, bicubic)
