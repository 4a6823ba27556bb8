"""Every upscale model a user can pick (the schema's list, the page's list) has real weights and
renders a real framing job with them, on a small crop."""

import json
import subprocess
from pathlib import Path
from typing import get_args

import cv2
import pytest
from jobspec import JOB_SPEC, UpscaleModel
from phone_clips import pattern_clip
from render_helpers import KEY_A, frames, render_job

from gpu_worker.upscale import MODELS, default_weights_dir
from scripts.localstack import NODE_BIN

ROOT = Path(__file__).resolve().parents[2]
OFFERED = [m for m in get_args(UpscaleModel) if m != "none"]


def test_the_editor_offers_exactly_the_schemas_models():
    """The editor's model choice is built from project.js's UPSCALE_MODELS: read them as the page does."""
    project = (ROOT / "workers/public/project.js").as_uri()
    script = f"import('{project}').then(m => console.log(JSON.stringify(Object.keys(m.UPSCALE_MODELS))))"
    out = subprocess.run([str(NODE_BIN / "node"), "--input-type=module", "-e", script], capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out) == list(get_args(UpscaleModel))


@pytest.mark.parametrize("model", OFFERED)
def test_every_offered_model_renders_a_framing_job_with_its_real_weights(model, tmp_path):
    assert (default_weights_dir() / MODELS[model].weights).exists(), f"{model} has no weights: set-up makes them"
    clip = pattern_clip(tmp_path / "in.mp4", size="320x180", seconds=0.1)  # 3 frames
    crop = {"t": 0, "x": 0.25, "y": 0.25, "w": 0.3, "h": 0.4}
    spec = JOB_SPEC.validate_python({"type": "framing", "input_video_key": KEY_A, "params": {
        "crop_keyframes": [crop], "output_width": 72, "output_height": 96, "upscale_model": model}})
    result = render_job(spec, {KEY_A: clip}, tmp_path / "w", tmp_path / "s")  # the model sees 18x24
    assert (result.frames, result.width, result.height) == (3, 72, 96)
    # The crop, upscaled by the model, still shows the crop: close to a plain resize of it.
    source = frames(clip, 0, 1)[0][45:117, 80:176]  # rows y..y+h, columns x..x+w of 180x320
    plain = cv2.resize(source, (72, 96), interpolation=cv2.INTER_CUBIC)
    assert cv2.PSNR(frames(result.path, 0, 1)[0], plain) > 20
