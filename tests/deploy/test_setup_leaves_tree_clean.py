"""Set-up changes no tracked file: a fresh `make dev` / `make test` leaves `git status` clean."""

import shutil
import subprocess

from scripts.localstack import ROOT, tool_env


def test_package_lock_is_complete(tmp_path):
    """npm rewrites a lock that lacks other platforms' optional packages (workerd for macOS, Windows,
    arm64) on every install; the committed lock must already be what npm writes."""
    for name in ("package.json", "package-lock.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    subprocess.run(["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund",
                    "--loglevel=error"], cwd=tmp_path, env=tool_env(), check=True, timeout=120)
    assert (tmp_path / "package-lock.json").read_text() == (ROOT / "package-lock.json").read_text()


def test_setup_outputs_are_ignored():
    """What set-up writes (venv, vendored packages, caches, egg-info) is ignored by git."""
    written = [".venv", "python_modules", "node_modules", ".cache", "gpu_export_jobs.egg-info"]
    out = subprocess.run(["git", "check-ignore", *written], cwd=ROOT, capture_output=True, text=True)
    assert sorted(out.stdout.split()) == sorted(written)
