"""gpu-worker/Dockerfile, offline (no Docker engine here): hadolint, the build context against
.dockerignore, what the image must hold and declare, and the worker started from exactly the files
the image copies."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

from .conftest import ROOT
from .dockerfile_lint import DockerIgnore, context_files, parse

DOCKERFILE = ROOT / "gpu-worker/Dockerfile"
INSTRUCTIONS = parse(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def context() -> set[str]:
    return context_files(ROOT, DockerIgnore.parse((ROOT / ".dockerignore").read_text()))


def stages() -> dict[str, list]:
    """Stage name -> its instructions (FROM included)."""
    out, name = {}, None
    for ins in INSTRUCTIONS:
        if ins.keyword == "FROM":
            words = ins.args.split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else str(len(out))
            out[name] = []
        if name is not None:
            out[name].append(ins)
    return out


def context_copies() -> list[tuple[int, str, str]]:
    """(line, source, destination) of every COPY/ADD from the build context (not --from a stage)."""
    out = []
    for ins in INSTRUCTIONS:
        if ins.keyword in ("COPY", "ADD") and "from" not in ins.flags:
            *sources, dest = ins.operands()
            out += [(ins.line, src, dest) for src in sources]
    return out


def test_hadolint_finds_nothing(pip_tools):
    out = subprocess.run([pip_tools["hadolint"], "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == ""


def test_every_copy_source_exists_and_is_in_the_build_context(context):
    copies = context_copies()
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
    copied = [src.rstrip("/") for _, src, _ in context_copies()]
    strays = {f for f in context if not any(f == c or f.startswith(c + "/") for c in copied)}
    assert not strays, f"in the build context but never copied: {sorted(strays)}"
    assert not any(f.startswith((".venv/", "node_modules/", ".cache/", ".wrangler/")) for f in context)
    assert not any(f.endswith((".env", ".dev.vars")) for f in context)


def test_runtime_declarations():
    runtime = stages()[list(stages())[-1]]
    by_kw = {}
    for ins in runtime:
        by_kw.setdefault(ins.keyword, []).append(ins)
    assert by_kw["ENTRYPOINT"][-1].words() == ["python", "-m", "gpu_worker"]  # exec form: python is PID 1
    assert by_kw["STOPSIGNAL"][-1].args == "SIGTERM"
    user = by_kw["USER"][-1].args
    arg_uid = next(i.args.split("=")[1] for i in runtime if i.keyword == "ARG" and i.args.startswith("APP_UID="))
    uid = user.replace("${APP_UID}", arg_uid).split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root uid (runAsNonRoot checks it)"
    env = " ".join(i.args for i in by_kw["ENV"])
    assert re.search(r"NVIDIA_DRIVER_CAPABILITIES=\S*\bvideo\b", env), "NVENC needs the `video` capability"
    assert re.search(r"NVIDIA_DRIVER_CAPABILITIES=\S*\bcompute\b", env)
    assert "GPU_WORKER_WEIGHTS_DIR=/weights" in env and "GPU_WORKER_WORKDIR=/scratch" in env
    base = next(i for i in INSTRUCTIONS if i.keyword == "ARG" and i.args.startswith("CUDA_BASE="))
    assert re.fullmatch(r"CUDA_BASE=nvidia/cuda:13\.\d+\.\d+-base-ubuntu24\.04", base.args)


def test_weights_are_baked_only_when_the_build_arg_says_so():
    weights_stage = stages()["weights"]
    run = next(i for i in weights_stage if i.keyword == "RUN").args
    assert 'if [ "$BAKE_WEIGHTS" = 1 ]' in run and "sha256sum --check" in run
    assert any(i.keyword == "ARG" and i.args == "BAKE_WEIGHTS=0" for i in weights_stage)
    for _, src, _ in context_copies():
        assert not src.startswith(".cache"), "weights come from the init container or BAKE_WEIGHTS=1"


def test_pins_match_the_tested_versions():
    """requirements*.txt pin exactly what pyproject's `gpu` extra allows and setup.sh's torch version."""
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
    setup_torch = re.search(r"torch==([\w.]+)", (ROOT / "scripts/setup.sh").read_text()).group(1)
    assert pins["torch"] == setup_torch


def test_weight_pins_match_the_converted_weights():
    pins = (ROOT / "gpu-worker/k8s/weights.sha256").read_text()
    assert re.fullmatch(r"([0-9a-f]{64}  [\w.-]+\.pth\n)+", pins)
    local = ROOT / ".cache/weights/SHA256SUMS"  # written by scripts/fetch_weights.py (make setup)
    if not local.exists():
        pytest.skip("no converted weights here (scripts/fetch_weights.py has not run)")
    assert sorted(local.read_text().splitlines()) == sorted(pins.splitlines())


def test_worker_starts_from_the_image_files_alone(context, tmp_path):
    """Lay out /app as the image does (only files that pass .dockerignore) and run the entrypoint with
    the image's PYTHONPATH: no module outside the copied set is needed."""
    app = tmp_path / "app"
    for _, src, dest in context_copies():
        if not dest.startswith("/app/"):
            continue
        src, dest_in_app = src.rstrip("/"), app / dest[len("/app/"):]
        for f in context:
            if f == src:
                target = dest_in_app
            elif f.startswith(src + "/"):
                target = dest_in_app / f[len(src) + 1:]
            else:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((ROOT / f).read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPU_WORKER_", "PYTHON"))}
    env["PYTHONPATH"] = f"{app}/workers/src:{app}/gpu-worker"
    cmd = [sys.executable, "-s", "-m", "gpu_worker"]
    for argv in (["--help"], ["cost", "--help"]):
        out = subprocess.run(cmd + argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "usage: gpu-export-worker" in out.stdout
    probe = subprocess.run([sys.executable, "-s", "-c", "import gpu_worker.__main__ as m, jobspec; print(m.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and probe.stdout.startswith(str(app)), probe.stderr
    assert (app / "scripts/fetch_weights.py").exists() and (app / "weights.sha256").exists()
