"""Chaos run: export jobs through a local stack while GPU workers are killed, spot-stopped and cut
off and the control plane itself restarts; then proof that no job was lost, duplicated or leaked.

    .venv/bin/python scripts/chaos.py --jobs 50          (`make chaos`; `N=...` to change the count)

What happens, all on 127.0.0.1:
- `wrangler dev` (LocalStack, --persist-to kept) with a short lease and a high MAX_ATTEMPTS, so the
  injected faults do not exhaust attempts; small generated clips (256x144, 2-4 s, with audio).
- N jobs of mixed types (overlay, framing without and with Real-ESRGAN, multi_clip) from two users,
  half up front, the rest while the faults happen (Idempotency-Key, retried through the restart).
- several `python -m gpu_worker` processes with small checkpoints; some reach the control plane
  through a fault proxy that delays requests and drops connections (before or after forwarding).
- injected: SIGKILL of a worker mid-render (its lease must expire), SIGTERM (spot path), a spot
  notice from the metadata URL each worker polls (IMDSv2: a session token is required), a pending
  job's queue message taken and acked unread (lost: the job's DO must send another), and one restart
  of `wrangler dev` itself. Each signal targets a worker that the job's Durable Object confirms holds
  the lease of a job with a stored checkpoint; dead workers are replaced.
- every job is watched over its WebSocket: the DO's own event stream (seq, who holds the lease).

Checked at the end (each failure is a line in Report.problems):
- every job terminal within a bound derived from the config and the measured reference render time;
  every job complete; the D1 list holds exactly the submitted jobs, one per Idempotency-Key;
- every output in R2 decodes (PyAV) to exactly the reference's frame count, and matches an
  uninterrupted render of the same spec (gpu_worker.render.render + DirectoryStore): md5 of every
  decoded frame when each resume started on a segment boundary (x264 is deterministic); otherwise
  md5 up to the segment of the first off-boundary resume and, after it, PSNR >= 32 dB per frame with
  each frame closer to its own reference frame than to its neighbours by 1 dB (two crf-20 encodes of
  the same frames measure >= 36 dB, neighbouring frames of these clips <= 33 dB);
- exactly one accepted `complete` per job (workers' logs + the fault proxy's view), at most one
  `complete` event from the DO;
- resume counts: for every effective interruption i of job J (J's DO confirmed the signalled
  worker held the lease with a checkpoint, at resume_count r_i, and the claim did not complete J),
  resume_count(J) >= r_i + 1, and resume_count(J) >= the number of such interruptions; a SIGKILL
  costs an attempt (the lease expires): attempts(J) >= effective kills; an effective SIGTERM / spot
  notice is an accepted `interrupted` report: interruptions(J) >= their number. A job no fault
  touched has resume_count = attempts = interruptions = 0;
- D1 (GET /api/jobs) and the DO (GET /api/jobs/{id}) agree on every job;
- nothing under checkpoints/ once all jobs finished, outputs only for complete jobs;
- no worker crashed (exit status other than 0 or SIGKILL).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT / "scripts", ROOT / "workers/src", ROOT / "gpu-worker"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import httpx  # noqa: E402

from gpu_worker_proc import GpuWorker, r2_config  # noqa: E402
from localstack import LocalStack  # noqa: E402

# 60 fps: renders long enough for a signal to land mid-render; the picture scrolls by a pixel a frame,
# so that neighbouring frames differ (<= 33 dB PSNR apart) more than two encodes of one frame (>= 36 dB).
FPS = 60
CLIPS = ((2, 440), (3, 660), (4, 880))  # (seconds, audio Hz) of the generated inputs
TERMINAL = ("complete", "error", "cancelled")
PSNR_MIN_DB = 32.0
MAX_RETRIES = 3  # more signals of a kind when one landed after the render's last frame
PSNR_MARGIN_DB = 1.0
CHECKPOINT_SECONDS = 3600  # segments are cut by frame count only: boundaries do not depend on load
AWS_NOTICE = '{"action": "terminate", "time": "2026-11-23T10:00:00Z"}'
HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "accept-encoding"}


@dataclass
class ChaosConfig:
    jobs: int = 50
    workers: int = 3
    proxied_workers: int = 1  # of `workers`, reach the control plane through the fault proxy
    kills: Optional[int] = None  # SIGKILL a worker mid-render (default: scaled to jobs)
    terms: Optional[int] = None  # SIGTERM (the spot path)
    spots: Optional[int] = None  # spot notice from the metadata endpoint
    losses: Optional[int] = None  # a pending job's queue message taken from the queue and acked unread
    restart: bool = True  # restart wrangler dev once
    upscale_jobs: int = 2  # framing jobs with realesr-animevideov3 at a tiny output size
    proxy_delay_rate: float = 0.12
    proxy_drop_rate: float = 0.06
    proxy_max_faults: Optional[int] = None
    lease_timeout_s: float = 4.0
    heartbeat_s: float = 1.0
    max_attempts: int = 8
    requeue_delay_s: float = 0.0
    redispatch_s: Optional[float] = None  # default: three lease timeouts
    checkpoint_frames: int = 15
    seed: int = 1
    workdir: Optional[Path] = None
    keep: bool = False  # keep the stack's state and logs

    def __post_init__(self):
        scale = max(1, self.jobs // 8)
        self.kills = scale if self.kills is None else self.kills
        self.terms = max(1, self.jobs // 12) if self.terms is None else self.terms
        self.spots = max(1, self.jobs // 12) if self.spots is None else self.spots
        self.losses = max(1, self.jobs // 12) if self.losses is None else self.losses
        self.redispatch_s = 3 * self.lease_timeout_s if self.redispatch_s is None else self.redispatch_s
        self.proxy_max_faults = 3 * self.jobs if self.proxy_max_faults is None else self.proxy_max_faults


def log(t0: float, text: str) -> None:
    print(f"[{time.monotonic() - t0:7.1f}s] {text}", flush=True)


# ---------------------------------------------------------------------------------------- inputs


def make_clip(path: Path, seconds: int, freq: int) -> Path:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error",
                    "-f", "lavfi", "-i", f"testsrc2=size=256x144:rate={FPS},scroll=horizontal=0.004", "-f", "lavfi",
                    "-i", f"sine=frequency={freq}", "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)], check=True)
    return path


def placeholder_key(i: int) -> str:
    return f"videos/raw/chaos/clip{i}/clip{i}.mp4"


def job_specs(n: int, upscale_jobs: int, rng: random.Random) -> list[tuple[dict, int]]:
    """(spec with placeholder keys, expected frames) for n jobs of mixed types."""
    kinds = (["overlay", "framing", "multi_clip"] * n)[:n]
    rng.shuffle(kinds)
    for i in range(min(upscale_jobs, n)):
        kinds[(i * 7 + 1) % n] = "upscale"
    return [_spec(kind, rng) for kind in kinds]


def _region(rng: random.Random, seconds: float) -> dict:
    def kf(t):
        return {"t": t, "x": round(rng.uniform(0.25, 0.75), 3), "y": round(rng.uniform(0.25, 0.75), 3),
                "rx": round(rng.uniform(0.1, 0.3), 3), "ry": round(rng.uniform(0.1, 0.3), 3),
                "easing": rng.choice(["linear", "ease_in", "ease_out", "ease_in_out", "hold"])}
    return {"keyframes": [kf(0), kf(round(rng.uniform(0.5, 1.0) * seconds, 2))],
            "dim": round(rng.uniform(0.3, 0.8), 2)}


def _spec(kind: str, rng: random.Random) -> tuple[dict, int]:
    i = rng.randrange(len(CLIPS))
    seconds = CLIPS[i][0]
    if kind == "overlay":
        regions = [_region(rng, seconds) for _ in range(rng.choice([1, 2]))]
        return {"type": "overlay", "input_video_key": placeholder_key(i),
                "params": {"highlight_regions": regions}}, seconds * FPS
    if kind in ("framing", "upscale"):
        w = round(rng.uniform(0.3, 0.5), 3)
        crops = [{"t": 0, "x": round(rng.uniform(0, 1 - w), 3), "y": 0, "w": w, "h": 1},
                 {"t": seconds, "x": round(rng.uniform(0, 1 - w), 3), "y": 0, "w": w, "h": 1,
                  "easing": "ease_in_out"}]
        model, (out_w, out_h) = ("none", (144, 256)) if kind == "framing" else ("realesr-animevideov3", (72, 128))
        return {"type": "framing", "input_video_key": placeholder_key(i), "params": {
            "crop_keyframes": crops, "output_width": out_w, "output_height": out_h,
            "upscale_model": model}}, seconds * FPS
    clips, frames = [], 0
    for n in range(2):
        j = rng.randrange(len(CLIPS))
        start = rng.choice([0.0, 0.5, 1.0])
        end = min(CLIPS[j][0], start + rng.choice([0.8, 1.0, 1.5]))
        clip = {"input_video_key": placeholder_key(j), "start_s": start, "end_s": end, "title": f"Part {n + 1}"}
        if n == 1:
            clip["overlay"] = {"highlight_regions": [_region(rng, end)]}
        clips.append(clip)
        frames += round(end * FPS) - round(start * FPS)
    return {"type": "multi_clip", "params": {"clips": clips}}, frames


def with_keys(spec: dict, keys: dict[str, str]) -> dict:
    """The spec with its placeholder input keys replaced by a user's uploaded keys."""
    return json.loads(json.dumps(spec), object_hook=lambda d: {
        k: (keys.get(v, v) if k == "input_video_key" else v) for k, v in d.items()})


def render_reference(spec: dict, inputs: dict[str, str], workdir: str, segment_frames: int) -> dict:
    """An uninterrupted render of `spec` (runs in a pool process): its output and timing."""
    from jobspec import JOB_SPEC

    from gpu_worker.render import render
    from gpu_worker.segments import DirectoryStore

    started = time.monotonic()
    result = render(JOB_SPEC.validate_python(spec), inputs, os.path.join(workdir, "work"),
                    DirectoryStore(os.path.join(workdir, "store")), segment_frames=segment_frames,
                    segment_seconds=CHECKPOINT_SECONDS)
    out = os.path.join(workdir, "reference.mp4")
    shutil.move(result.path, out)
    shutil.rmtree(os.path.join(workdir, "work"), ignore_errors=True)
    shutil.rmtree(os.path.join(workdir, "store"), ignore_errors=True)
    return {"path": out, "frames": result.frames, "seconds": time.monotonic() - started}


# ---------------------------------------------------------------------------------------- video


def decode_planes(path: str) -> tuple[list, bool]:
    """Every decoded video frame as a yuv420p array, and whether the file has an audio stream."""
    import av

    with av.open(path) as container:
        has_audio = bool(container.streams.audio)
        frames = [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]
    return frames, has_audio


def psnr(a, b) -> float:
    import numpy as np

    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def compare_frames(out: list, ref: list, exact_until: int) -> tuple[list[str], dict]:
    """Problems, and stats, comparing an output's frames with the reference's."""
    problems = []
    md5 = [hashlib.md5(f.tobytes()).hexdigest() for f in out]
    ref_md5 = [hashlib.md5(f.tobytes()).hexdigest() for f in ref]
    identical = sum(a == b for a, b in zip(md5, ref_md5))
    first_diff = next((i for i, (a, b) in enumerate(zip(md5, ref_md5)) if a != b), None)
    if first_diff is not None and first_diff < exact_until:
        problems.append(f"frame {first_diff} differs from the uninterrupted render (expected identical frames "
                        f"before frame {exact_until})")
    worst = 99.0
    for i in range(first_diff if first_diff is not None else len(out), min(len(out), len(ref))):
        own = psnr(out[i], ref[i])
        worst = min(worst, own)
        neighbours = [psnr(out[i], ref[j]) for j in (i - 1, i + 1) if 0 <= j < len(ref) and ref_md5[j] != ref_md5[i]]
        if own < PSNR_MIN_DB:
            problems.append(f"frame {i}: PSNR {own:.1f} dB against the uninterrupted render (< {PSNR_MIN_DB})")
            break
        if neighbours and own < max(neighbours) + PSNR_MARGIN_DB:
            problems.append(f"frame {i}: matches a neighbouring reference frame ({max(neighbours):.1f} dB) about as "
                            f"well as its own ({own:.1f} dB): frames out of place")
            break
    return problems, {"identical": identical, "frames": len(out), "psnr_min": worst}


# ---------------------------------------------------------------------------------------- the fault proxy


class _QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-answer (a killed worker) is no error worth a traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class FaultProxy(_QuietServer):
    """An HTTP proxy on 127.0.0.1 in front of the stack for some workers. On pod API requests it
    injects, at random and at most `max_faults` times: a delay, a dropped connection before the
    request is forwarded, or one dropped after the Worker handled it (the pod never sees the answer).
    Every pod request is recorded (job, action, fault, status, lease and pod of claims)."""

    daemon_threads = True

    def __init__(self, upstream: str, rng: random.Random, delay_rate: float, drop_rate: float, max_faults: int):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream, self.rng = upstream, rng
        self.delay_rate, self.drop_rate, self.max_faults = delay_rate, drop_rate, max_faults
        self.enabled = True
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=30)
        threading.Thread(target=self.serve_forever, name="fault-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    @property
    def faults(self) -> Counter:
        return Counter(r["fault"] for r in self.records if r["fault"])

    def decide(self, action: Optional[str]) -> tuple[Optional[str], float]:
        with self.lock:
            if action is None or not self.enabled or sum(self.faults.values()) >= self.max_faults:
                return None, 0.0
            u = self.rng.random()
            if u < self.drop_rate / 2:
                return "drop_before", 0.0
            if u < self.drop_rate:
                return "drop_after", 0.0
            if u < self.drop_rate + self.delay_rate:
                return "delay", self.rng.uniform(0.2, 1.5)
            return None, 0.0

    def record(self, rec: dict) -> None:
        with self.lock:
            self.records.append(rec)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def do_POST(self):
        proxy = self.server
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        job_id, action = (parts[3], parts[4]) if len(parts) == 5 and parts[:3] == ["api", "pod", "jobs"] else (None, None)
        fault, delay = proxy.decide(action)
        rec = {"ts": time.time(), "job_id": job_id, "action": action, "fault": fault, "status": None}
        try:
            payload = json.loads(body or b"{}")
            rec["lease_id"], rec["pod_id"] = payload.get("lease_id"), payload.get("pod_id")
        except ValueError:
            pass
        if fault == "delay":
            time.sleep(delay)
        if fault == "drop_before":
            proxy.record(rec)
            self.close_connection = True
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        try:
            r = proxy.client.request(self.command, proxy.upstream + self.path, content=body, headers=headers)
            status, content, ctype = r.status_code, r.content, r.headers.get("content-type", "application/json")
        except httpx.HTTPError as e:  # the stack is down (restarting): what a load balancer says
            status, ctype = 502, "application/json"
            content = json.dumps({"error": "bad_gateway", "reason": type(e).__name__}).encode()
        rec["status"] = status
        try:
            reply = json.loads(content)
            rec["ignored"] = bool(reply.get("ignored"))
            if action == "claim" and status == 200:
                rec["lease_id"] = reply.get("lease_id")
        except ValueError:
            pass
        proxy.record(rec)
        if fault == "drop_after":
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args):
        pass


# ---------------------------------------------------------------------------------------- spot metadata


class SpotMetadata(_QuietServer):
    """The cloud metadata endpoint, one URL per worker: 404 until that worker is given a notice.
    IMDSv2 is required, as on current AWS instances: a GET without the session token is a 401."""

    TOKEN = "chaos-imdsv2-token"

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _SpotHandler)
        self.noticed: set[str] = set()
        threading.Thread(target=self.serve_forever, name="spot-metadata", daemon=True).start()

    def url_for(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_port}/latest/meta-data/spot/instance-action/{name}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _SpotHandler(BaseHTTPRequestHandler):
    server: SpotMetadata

    def do_PUT(self):
        ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self._send(200 if ok else 400, self.server.TOKEN if ok else "Bad Request")

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != self.server.TOKEN:
            return self._send(401, "Unauthorized")
        noticed = self.path.rsplit("/", 1)[-1] in self.server.noticed
        self._send(200 if noticed else 404, AWS_NOTICE if noticed else "Not Found")

    def _send(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# ---------------------------------------------------------------------------------------- API users


class Unavailable(Exception):
    pass


class User:
    """A user of the public API whose calls are retried while the stack is down (restart)."""

    def __init__(self, base_url: str, deadline: float):
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.deadline = deadline
        self.token = self.call("POST", "/api/auth/anonymous").json()["token"]
        self.http.headers["authorization"] = f"Bearer {self.token}"

    def call(self, method: str, path: str, retry_until: Optional[float] = None, **kw) -> httpx.Response:
        """The first answer that is not a 5xx or a connection failure, retried until the deadline."""
        until = retry_until or self.deadline
        while True:
            try:
                r = self.http.request(method, path, **kw)
                if r.status_code < 500:
                    return r
                why = f"HTTP {r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as e:
                why = f"{type(e).__name__}: {e}"
            if time.monotonic() > until:
                raise Unavailable(f"{method} {path}: {why}")
            time.sleep(0.5)

    def upload(self, data: bytes, name: str) -> str:
        r = self.call("POST", "/api/videos/upload-url",
                      json={"filename": name, "content_type": "video/mp4", "size_bytes": len(data)})
        r.raise_for_status()
        info = r.json()
        httpx.put(info["upload_url"], content=data, headers=info["headers"], timeout=30).raise_for_status()
        return info["video_key"]

    def job(self, job_id: str) -> dict:
        r = self.call("GET", f"/api/jobs/{job_id}")
        r.raise_for_status()
        return r.json()

    def listed(self) -> list[dict]:
        """Every job of the user from GET /api/jobs (D1), page by page."""
        jobs, cursor = [], None
        while True:
            r = self.call("GET", "/api/jobs", params={"limit": 100, **({"cursor": cursor} if cursor else {})})
            r.raise_for_status()
            jobs += r.json()["jobs"]
            cursor = r.json()["next_cursor"]
            if not cursor:
                return jobs


@dataclass
class Submission:
    index: int
    user: User
    spec: dict
    kind: str
    expected_frames: int
    ref: dict = field(default_factory=dict)  # the uninterrupted reference render
    idempotency_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    job_id: Optional[str] = None
    answers: list = field(default_factory=list)  # statuses of every try (a replay answers 200)

    def submit(self) -> str:
        while True:
            r = self.user.call("POST", "/api/jobs", json=self.spec, headers={"Idempotency-Key": self.idempotency_key})
            self.answers.append(r.status_code)
            if r.status_code in (200, 202):
                if self.job_id not in (None, r.json()["job_id"]):
                    raise AssertionError(f"Idempotency-Key {self.idempotency_key} gave two jobs")
                self.job_id = r.json()["job_id"]
                return self.job_id
            raise AssertionError(f"job {self.index} refused: {r.status_code} {r.text[:300]}")


# ---------------------------------------------------------------------------------------- watching the DO


class JobWatch(threading.Thread):
    """The job's WebSocket, reconnected (with a fresh ticket) until the job is terminal: the DO's own
    event stream. Tracks who holds the lease according to the DO (started/resumed name the pod)."""

    def __init__(self, user: User, job_id: str, stop: threading.Event):
        super().__init__(name=f"watch-{job_id[:8]}", daemon=True)
        self.user, self.job_id, self.stop_event = user, job_id, stop
        self.lock = threading.Lock()
        self.events: list[dict] = []  # every non-snapshot event, in arrival order
        self.snapshots: list[dict] = []
        self.seq, self.status, self.holder, self.checkpoint_frame = -1, "pending", None, 0
        self.total_frames = self.frame = 0
        self.connects = 0

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def run(self) -> None:
        import websockets.sync.client as ws_client

        while not self.stop_event.is_set() and not self.terminal:
            try:
                r = self.user.http.post(f"/api/jobs/{self.job_id}/ws-ticket")
                if r.status_code != 200:
                    raise ConnectionError(r.text)
                with ws_client.connect(r.json()["websocket_url"], open_timeout=10, close_timeout=2) as ws:
                    self.connects += 1
                    while not self.stop_event.is_set() and not self.terminal:
                        try:
                            self._seen(json.loads(ws.recv(timeout=0.5)))
                        except TimeoutError:
                            continue
            except Exception:
                self.stop_event.wait(0.5)

    def _seen(self, event: dict) -> None:
        with self.lock:
            if event["type"] == "snapshot":
                self.snapshots.append(event)
                if event["seq"] != self.seq:  # first connection, or events were missed while away
                    self.holder = None
                job = event["job"]
                self.seq, self.status = event["seq"], job["status"]
                self.checkpoint_frame = max(self.checkpoint_frame, (job["checkpoint"] or {}).get("frame", 0))
                self.total_frames = job["total_frames"] or self.total_frames
                self.frame = max(self.frame, job["frame"])
                if self.status != "processing":
                    self.holder = None
                return
            if event["type"] in ("pong", "error") or "seq" not in event:
                return
            self.events.append(event)
            if event["seq"] != self.seq + 1:
                self.holder = None
            self.seq, self.status = event["seq"], event["status"]
            if event["type"] in ("started", "resumed"):
                self.holder = event.get("pod_id")
            elif event["type"] in ("requeued",) + TERMINAL:
                self.holder = None
            if event["type"] == "checkpoint":
                self.checkpoint_frame = max(self.checkpoint_frame, event["frame"])
            self.total_frames = event.get("total_frames") or event.get("total") or self.total_frames
            self.frame = max(self.frame, event.get("frame") or 0)

    def state(self) -> tuple[int, str, Optional[str], int]:
        with self.lock:
            return self.seq, self.status, self.holder, self.checkpoint_frame

    def remaining(self) -> int:
        """Frames the render has yet to reach, as far as the DO knows (its progress reports)."""
        with self.lock:
            return self.total_frames - max(self.frame, self.checkpoint_frame)

    def by_seq(self) -> dict[int, dict]:
        with self.lock:
            return {e["seq"]: e for e in self.events}

    def completes(self) -> int:
        with self.lock:
            return sum(e["type"] == "complete" for e in self.events)


def claim_end(events: dict[int, dict], after_seq: int) -> Optional[dict]:
    """The event that ended the claim that was current at `after_seq` (requeued, complete, error,
    cancelled, or a later claim), or None if the DO's stream has a gap before it."""
    seq = after_seq + 1
    while seq in events:
        if events[seq]["type"] in ("requeued", "started", "resumed") + TERMINAL:
            return events[seq]
        seq += 1
    return None


def holder_at(events: dict[int, dict], seq: int) -> Optional[str]:
    """The pod holding the lease when event `seq` happened, if the stream has no gap back to its claim."""
    s = seq - 1
    while s in events:
        if events[s]["type"] in ("started", "resumed"):
            return events[s].get("pod_id")
        if events[s]["type"] in ("requeued",) + TERMINAL:
            return None
        s -= 1
    return None


# ---------------------------------------------------------------------------------------- workers


class Fleet:
    """`workers` GPU worker processes; a dead one is replaced (same slot: direct or behind the proxy)."""

    def __init__(self, stack: LocalStack, workdir: Path, cfg: ChaosConfig, proxy: FaultProxy, spot: SpotMetadata):
        self.stack, self.workdir, self.cfg, self.proxy, self.spot = stack, workdir, cfg, proxy, spot
        self.slots: list[Optional[GpuWorker]] = [None] * cfg.workers
        self.every: list[GpuWorker] = []
        self.proxied: set[str] = set()
        self.signalled: dict[str, str] = {}  # worker name -> what was done to it
        self.exits: dict[str, int] = {}
        self.spawned: dict[str, float] = {}
        self.stopping = False
        self._startup: list[float] = []
        for slot in range(cfg.workers):
            self._start(slot)

    def _start(self, slot: int) -> None:
        behind_proxy = slot < self.cfg.proxied_workers
        name = f"pod-{len(self.every) + 1:02d}{'-proxied' if behind_proxy else ''}"
        args = ["--checkpoint-frames", str(self.cfg.checkpoint_frames), "--checkpoint-seconds", str(CHECKPOINT_SECONDS),
                "--spot-metadata-url", self.spot.url_for(name), "--spot-poll-seconds", "0.2"]
        if behind_proxy:
            args += ["--api-url", self.proxy.url]
            self.proxied.add(name)
        self.spawned[name] = time.time()
        worker = GpuWorker(self.stack, self.workdir, name, *args)
        self.slots[slot] = worker
        self.every.append(worker)

    def supervise(self) -> None:
        for slot, worker in enumerate(self.slots):
            if worker is not None and worker.proc.poll() is not None:
                self.exits[worker.name] = worker.proc.returncode
                self.slots[slot] = None
                if not self.stopping:
                    self._start(slot)

    def startup_s(self) -> float:
        """Spawn to "worker started", measured on the first workers (30 s until one has started)."""
        if len(self._startup) < len(self.every[:3]):
            self._startup = []
            for worker in self.every[:3]:
                started = next((line["ts"] for line in _safe_lines(worker) if line.get("msg") == "worker started"), None)
                if started is not None:
                    self._startup.append(started - self.spawned[worker.name])
        return max(self._startup) if self._startup else 30.0

    def live(self) -> list[GpuWorker]:
        return [w for w in self.slots if w is not None and w.proc.poll() is None and w.name not in self.signalled]

    def stop(self, grace_s: float) -> None:
        self.stopping = True
        for worker in self.slots:
            if worker is not None and worker.proc.poll() is None:
                worker.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for worker in self.every:
            try:
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
            self.exits.setdefault(worker.name, worker.proc.returncode)

    def log_lines(self) -> dict[str, list[dict]]:
        return {worker.name: _safe_lines(worker) for worker in self.every}


def _safe_lines(worker: GpuWorker) -> list[dict]:
    try:
        return worker.lines()
    except (OSError, ValueError):  # a line being written
        return []


# ---------------------------------------------------------------------------------------- the run


@dataclass
class Injection:
    kind: str  # kill | term | spot | restart
    at: float
    until: Optional[float] = None
    worker: Optional[str] = None
    job_id: Optional[str] = None
    confirm_seq: int = 0
    checkpoint_frame: int = 0
    resume_count: int = 0
    effective: Optional[bool] = None  # did it end the worker's claim without completing the job
    settled: bool = False  # the DO's stream shows how the claim ended (or it is too late to know)
    ended_by: Optional[str] = None
    note: str = ""


@dataclass
class Report:
    config: ChaosConfig
    problems: list[str] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)
    injections: list[Injection] = field(default_factory=list)
    proxy_faults: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    lost: int = 0  # submitted jobs missing from the list, or not terminal at the end
    duplicates: int = 0
    duplicate_completes: int = 0
    resumes: int = 0
    attempts: int = 0
    interruptions: int = 0
    md5_identical: int = 0
    psnr_checked: int = 0
    psnr_min: float = 99.0
    agree: int = 0
    orphans: int = 0
    replays: int = 0
    restart_s: Optional[float] = None
    port_kept: Optional[bool] = None
    bound_s: float = 0.0
    run_s: float = 0.0
    wall_s: float = 0.0
    workers_started: int = 0
    final: dict = field(default_factory=dict)  # job id -> final status

    def injected(self, kind: str) -> tuple[int, int]:
        done = [i for i in self.injections if i.kind == kind]
        return len(done), sum(bool(i.effective) for i in done)

    def details(self) -> str:
        """One line per injection."""
        rows = []
        for i in self.injections:
            if i.kind == "restart":
                rows.append(f"  restart of wrangler dev ({i.note})")
                continue
            if i.kind == "lose":
                rows.append(f"  lose  queue message of job {i.job_id[:8]} (pending): job ended "
                            f"{self.final.get(i.job_id, '?')}")
                continue
            rows.append(f"  {i.kind:<5} {i.worker:<16} job {i.job_id[:8]} checkpoint {i.checkpoint_frame:>3} "
                        f"resume_count {i.resume_count}: effective {i.effective}, claim ended by {i.ended_by}"
                        f"{'; ' + i.note if i.note else ''}")
        return "\n".join(rows)

    def table(self) -> str:
        c = self.config
        n = c.jobs
        complete = self.statuses.get("complete", 0)
        rows = [f"chaos run: {n} jobs ({', '.join(f'{v} {k}' for k, v in sorted(self.kinds.items()))}), "
                f"{c.workers} workers ({c.proxied_workers} behind the fault proxy), {self.workers_started} started, "
                f"seed {c.seed}",
                f"  {'interruption':<28}{'injected':>9}{'effective':>11}"]
        for kind, label in (("kill", "SIGKILL mid-render"), ("term", "SIGTERM (spot path)"),
                            ("spot", "spot notice (metadata URL)"), ("lose", "queue message lost"),
                            ("restart", "wrangler dev restart")):
            done, effective = self.injected(kind)
            rows.append(f"  {label:<28}{done:>9}{effective if kind not in ('restart', 'lose') else '-':>11}")
        for fault in ("delay", "drop_before", "drop_after"):
            rows.append(f"  {'proxy ' + fault.replace('_', ' '):<28}{self.proxy_faults.get(fault, 0):>9}{'-':>11}")
        rows += [
            f"  jobs complete            {complete}/{n} ({100 * complete / max(1, n):.0f}%); "
            f"others: {dict((k, v) for k, v in self.statuses.items() if k != 'complete') or 'none'}",
            f"  lost / duplicate jobs    {self.lost} / {self.duplicates} "
            f"({self.replays} submissions answered by an idempotent replay)",
            f"  duplicate completes      {self.duplicate_completes}",
            f"  resumes / attempts / interruptions (sum of DO counters)  {self.resumes} / {self.attempts} / "
            f"{self.interruptions}",
            f"  outputs vs uninterrupted {self.md5_identical} md5-identical, {self.psnr_checked} by PSNR "
            f"(min {self.psnr_min:.1f} dB, threshold {PSNR_MIN_DB} dB)",
            f"  D1 agrees with DO        {self.agree}/{n}",
            f"  orphan checkpoint keys   {self.orphans}",
            f"  wrangler restart         {self.restart_s and round(self.restart_s, 1)} s, port kept: {self.port_kept}",
            f"  wall time                {self.wall_s:.0f} s (jobs {self.run_s:.0f} s, bound {self.bound_s:.0f} s)",
            f"  problems                 {len(self.problems)}",
        ]
        return "\n".join(rows)


def run_chaos(cfg: ChaosConfig) -> Report:
    t0 = time.monotonic()
    report = Report(cfg)
    rng = random.Random(cfg.seed)
    workdir = Path(cfg.workdir or ROOT / ".cache/chaos").resolve()
    if workdir.exists() and not cfg.keep:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "clips").mkdir(exist_ok=True)

    # Inputs, specs and the uninterrupted references, while wrangler dev starts.
    clips = [make_clip(workdir / "clips" / f"clip{i}.mp4", s, f) for i, (s, f) in enumerate(CLIPS)]
    specs = job_specs(cfg.jobs, cfg.upscale_jobs, rng)
    stack = LocalStack(persist_dir=workdir / "state", vars={
        "LEASE_TIMEOUT_S": str(cfg.lease_timeout_s), "HEARTBEAT_INTERVAL_S": str(cfg.heartbeat_s),
        "MAX_ATTEMPTS": str(cfg.max_attempts), "REQUEUE_DELAY_S": str(cfg.requeue_delay_s),
        "REDISPATCH_S": str(cfg.redispatch_s)})
    started: dict = {}

    def start_stack() -> None:
        begin = time.monotonic()
        started["error"] = _try(stack.start)
        started["seconds"] = time.monotonic() - begin

    starter = threading.Thread(target=start_stack, daemon=True)
    starter.start()
    log(t0, f"rendering {len(specs)} uninterrupted references; starting wrangler dev on {stack.url}")
    inputs = {placeholder_key(i): str(p) for i, p in enumerate(clips)}
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        refs = list(pool.map(render_reference, [s for s, _ in specs], [inputs] * len(specs),
                             [str(workdir / "refs" / str(i)) for i in range(len(specs))],
                             [cfg.checkpoint_frames] * len(specs)))
    for i, ((spec, expected), ref) in enumerate(zip(specs, refs)):
        if ref["frames"] != expected:
            report.problems.append(f"reference {i} ({spec['type']}): {ref['frames']} frames, expected {expected}")
    ref_seconds = sum(r["seconds"] for r in refs)
    starter.join()
    if started.get("error"):
        raise RuntimeError(f"wrangler dev did not start: {started['error']}")
    log(t0, f"references done ({ref_seconds:.1f} s of rendering); stack up")

    stop_watching = threading.Event()
    spot = SpotMetadata()
    proxy = FaultProxy(stack.url, random.Random(cfg.seed + 1), cfg.proxy_delay_rate, cfg.proxy_drop_rate,
                       cfg.proxy_max_faults)
    fleet = None
    watches: dict[str, JobWatch] = {}
    try:
        setup_deadline = time.monotonic() + 120 + 4 * ref_seconds
        users = [User(stack.url, setup_deadline) for _ in range(2)]
        keys = [{placeholder_key(i): u.upload(p.read_bytes(), p.name) for i, p in enumerate(clips)} for u in users]
        subs = [Submission(i, users[i % 2], with_keys(spec, keys[i % 2]), _kind(spec), expected, ref)
                for i, ((spec, expected), ref) in enumerate(zip(specs, refs))]
        report.kinds = Counter(s.kind for s in subs)

        def submit(sub: Submission) -> None:
            sub.user.deadline = time.monotonic() + 120 + 3 * started["seconds"]  # through a restart
            sub.submit()
            watches[sub.job_id] = JobWatch(sub.user, sub.job_id, stop_watching)
            watches[sub.job_id].start()

        first_wave = max(1, cfg.jobs // 2)
        for sub in subs[:first_wave]:
            submit(sub)
        fleet = Fleet(stack, workdir / "workers", cfg, proxy, spot)
        run_start = time.monotonic()
        log(t0, f"{first_wave} jobs submitted, {cfg.workers} workers started")

        # The rest of the jobs while the faults happen, keeping about two per worker waiting.
        submit_errors: list[str] = []

        def submitter() -> None:
            try:
                for sub in subs[first_wave:]:
                    while sum(not w.terminal for w in list(watches.values())) >= 2 * cfg.workers:
                        if stop_watching.wait(0.2):
                            return
                    submit(sub)
            except Exception as e:
                submit_errors.append(f"submission failed: {type(e).__name__}: {e}")

        feeder = threading.Thread(target=submitter, name="submitter", daemon=True)
        feeder.start()

        plan = ["kill"] * cfg.kills + ["term"] * cfg.terms + ["spot"] * cfg.spots
        rng.shuffle(plan)
        if cfg.restart:
            plan.insert(len(plan) // 2, "restart")
        plan[:0] = ["lose"] * cfg.losses  # while jobs still wait in the queue
        targeted: Counter = Counter()
        retried: Counter = Counter()
        extra = 0  # retries at the front of the plan: best effort, not a problem if no victim comes
        last_injection = 0.0
        while True:
            fleet.supervise()
            # A signal that landed after the render's last frame did not interrupt anything: another,
            # at most MAX_RETRIES times per kind.
            for inj in report.injections:
                if inj.kind in ("kill", "term", "spot") and not inj.settled:
                    end = claim_end(watches[inj.job_id].by_seq(), inj.confirm_seq)
                    if end is not None or time.time() - inj.at > 2 * cfg.lease_timeout_s + 30:
                        inj.settled = True
                        if end and end["type"] == "complete" and retried[inj.kind] < MAX_RETRIES:
                            retried[inj.kind] += 1
                            plan.insert(0, inj.kind)
                            extra += 1
                            log(t0, f"job {inj.job_id[:8]} finished before the {inj.kind} landed: one more {inj.kind}")
            all_submitted = not feeder.is_alive()
            open_jobs = [j for j, w in list(watches.items()) if not w.terminal]
            if plan and time.monotonic() - last_injection > 0.5:
                if _inject(plan[0], stack, fleet, spot, proxy, watches, targeted, report, t0):
                    plan.pop(0)
                    extra = max(0, extra - 1)
                    last_injection = time.monotonic()
                elif all_submitted and not open_jobs:
                    log(t0, f"no victim left for {len(plan)} planned injection(s): {plan}")
                    if plan[extra:]:
                        report.problems.append(f"planned injections not done (no job was running): {plan[extra:]}")
                    plan = []
            if all_submitted and not open_jobs and not plan:
                break
            report.bound_s = _bound(cfg, ref_seconds, started["seconds"], report, proxy, fleet)
            if time.monotonic() - run_start > report.bound_s:
                stuck = {j: w.state() for j, w in list(watches.items()) if not w.terminal}
                report.problems.append(f"{len(stuck)} job(s) not terminal within the bound of {report.bound_s:.0f} s: "
                                       f"{stuck}")
                break
            time.sleep(0.1)
        report.problems += submit_errors
        report.run_s = time.monotonic() - run_start
        log(t0, f"jobs done after {report.run_s:.1f} s; stopping workers")
        stop_watching.set()
        feeder.join(5)
        fleet.stop(grace_s=30 + 2 * cfg.lease_timeout_s)
        for w in list(watches.values()):
            w.join(5)
        report.workers_started = len(fleet.every)
        report.lost += sum(s.job_id is None for s in subs)  # never accepted
        _verify(report, stack, [s for s in subs if s.job_id], watches, fleet, proxy, workdir, t0)
    finally:
        stop_watching.set()
        if fleet is not None:
            fleet.stop(grace_s=5)
        proxy.stop()
        spot.stop()
        stack.stop()
    report.wall_s = time.monotonic() - t0
    return report


def _bound(cfg: ChaosConfig, ref_seconds: float, stack_start_s: float, report: Report, proxy: FaultProxy,
           fleet: Fleet) -> float:
    """How long the jobs may take, from the configuration and what was measured on this machine:
    the uninterrupted references' render time with an 8x slack (workers share the CPUs, download,
    mux, upload), a lease timeout and two heartbeats for each fault that happened, three first-start
    times of wrangler dev for the restart, twice the claim visibility timeout (a message whose claim
    got no answer comes back after it), and three measured start-ups per worker process started."""
    from gpu_worker.runner import CLAIM_VISIBILITY_MS

    cpus = max(1, min(cfg.workers, os.cpu_count() or 1))
    faults = len([i for i in report.injections if i.kind not in ("restart", "lose")]) + sum(proxy.faults.values())
    fault_cost = cfg.lease_timeout_s + 2 * cfg.heartbeat_s + cfg.requeue_delay_s * 2 ** cfg.max_attempts
    lost = len([i for i in report.injections if i.kind == "lose"]) + cfg.restart  # messages lost (restart: some)
    return (8 * ref_seconds / cpus + faults * fault_cost + (3 * stack_start_s if cfg.restart else 0)
            + lost * 2 * cfg.redispatch_s + 2 * CLAIM_VISIBILITY_MS / 1000 + 3 * fleet.startup_s() * len(fleet.every))


def _try(fn) -> Optional[str]:
    try:
        fn()
        return None
    except Exception as e:  # reported by the caller
        return f"{type(e).__name__}: {e}"


def _kind(spec: dict) -> str:
    if spec["type"] == "framing" and spec["params"]["upscale_model"] != "none":
        return "framing+esrgan"
    return spec["type"]


def _inject(kind: str, stack: LocalStack, fleet: Fleet, spot: SpotMetadata, proxy: FaultProxy,
            watches: dict[str, JobWatch], targeted: Counter, report: Report, t0: float) -> bool:
    """Carry out one planned injection if it can be done now; whether it was."""
    if kind == "restart":
        if not any(w.state()[1] == "processing" for w in list(watches.values())):
            return False
        url, port = stack.url, stack.port
        started, began = time.monotonic(), time.time()
        log(t0, "restarting wrangler dev")
        stack.restart()
        report.restart_s = time.monotonic() - started
        report.port_kept = stack.port == port and stack.url == url
        if not report.port_kept:  # the workers and the proxy must follow the stack to its new address
            report.problems.append(f"wrangler dev came back on {stack.url}, not {url}")
            proxy.upstream = stack.url
            for worker in fleet.live():
                worker.kill()
        report.injections.append(Injection("restart", began, until=time.time(), note=f"{report.restart_s:.1f} s"))
        log(t0, f"wrangler dev back after {report.restart_s:.1f} s on the same port: {report.port_kept}")
        return True
    if kind == "lose":
        return _lose_message(stack, watches, targeted, report, t0)
    live = {w.name: w for w in fleet.live()}
    # The render must still be going when the signal lands: a checkpoint stored, and at least three
    # segments still to render; the job with the most left first.
    for job_id, watch in sorted(list(watches.items()), key=lambda item: -item[1].remaining()):
        seq, status, holder, checkpoint = watch.state()
        if (status != "processing" or holder not in live or checkpoint <= 0 or targeted[job_id] >= 2
                or watch.remaining() < 3 * fleet.cfg.checkpoint_frames):
            continue
        try:  # the DO itself: still this claim (no event since), with a stored checkpoint
            r = watch.user.http.get(f"/api/jobs/{job_id}", timeout=5)
        except httpx.HTTPError:
            return False
        job = r.json() if r.status_code == 200 else {}
        if job.get("seq") != seq or job.get("status") != "processing" or not (job.get("checkpoint") or {}).get("frame"):
            continue
        worker = live[holder]
        if kind == "kill":
            worker.kill()
        elif kind == "term":
            worker.signal(signal.SIGTERM)
        else:
            spot.noticed.add(worker.name)
        fleet.signalled[worker.name] = kind
        targeted[job_id] += 1
        report.injections.append(Injection(kind, time.time(), worker=worker.name, job_id=job_id, confirm_seq=seq,
                                           checkpoint_frame=job["checkpoint"]["frame"],
                                           resume_count=job["resume_count"]))
        log(t0, f"{kind} {worker.name} rendering job {job_id[:8]} (checkpoint at frame {job['checkpoint']['frame']}, "
                f"resume_count {job['resume_count']})")
        return True
    return False


def _lose_message(stack: LocalStack, watches: dict[str, JobWatch], targeted: Counter, report: Report,
                  t0: float) -> bool:
    """Take a pending job's queue message and ack it unread: the message is lost; the job's DO must
    notice that nobody claimed the job and send another (job_state.redispatch)."""
    from gpu_worker.queue_client import QueueClient

    pending = {j for j, w in list(watches.items()) if w.state()[1] == "pending" and not targeted[j]}
    if not pending:
        return False
    queue = QueueClient(stack.pull_base, "local", "gpu-jobs", stack.vars["QUEUE_PULL_TOKEN"])
    try:
        messages = queue.pull(batch_size=100, visibility_timeout_ms=30_000)
        victim = next((m for m in messages if m.body.get("job_id") in pending), None)
        queue.ack([victim.lease_id] if victim else [], [(m.lease_id, 0) for m in messages if m is not victim])
    except (httpx.HTTPError, RuntimeError, ValueError):
        return False
    if victim is None:
        return False
    job_id = victim.body["job_id"]
    targeted[job_id] += 1
    report.injections.append(Injection("lose", time.time(), job_id=job_id, effective=True,
                                       note="queue message acked unread"))
    log(t0, f"lose the queue message of pending job {job_id[:8]}")
    return True


# ---------------------------------------------------------------------------------------- verification


def _verify(report: Report, stack: LocalStack, subs: list[Submission],
            watches: dict[str, JobWatch], fleet: Fleet, proxy: FaultProxy, workdir: Path, t0: float) -> None:
    from gpu_worker.storage import R2

    cfg, problems = report.config, report.problems
    report.proxy_faults = proxy.faults
    report.replays = sum(200 in s.answers for s in subs)
    logs = fleet.log_lines()

    # Workers: none crashed; what each logged per job.
    for name, code in fleet.exits.items():
        if code not in (0, -signal.SIGKILL):
            problems.append(f"worker {name} exited with {code}")
    per_job_lines: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for name, lines in logs.items():
        for line in lines:
            if line.get("job_id"):
                per_job_lines[line["job_id"]].append((name, line))
            if line.get("msg") in ("worker slot crashed",) or line.get("level") == "error" and "exc" in line:
                problems.append(f"worker {name}: {line.get('msg')}: {str(line.get('exc', ''))[-300:]}")

    # D1: exactly the submitted jobs, one per Idempotency-Key; the DO view of each.
    users = {id(s.user): s.user for s in subs}
    listed: dict[str, dict] = {}
    for user in users.values():
        rows = user.listed()
        ids = [r["job_id"] for r in rows]
        report.duplicates += len(ids) - len(set(ids))
        mine = {s.job_id for s in subs if s.user is user}
        if set(ids) != mine:
            problems.append(f"user's job list differs from the submitted jobs: extra {sorted(set(ids) - mine)}, "
                            f"missing {sorted(mine - set(ids))}")
            report.duplicates += len(set(ids) - mine)
            report.lost += len(mine - set(ids))
        listed.update({r["job_id"]: r for r in rows})
    snapshots = {s.job_id: s.user.job(s.job_id) for s in subs}
    report.statuses = Counter(j["status"] for j in snapshots.values())
    report.lost += sum(j["status"] not in TERMINAL for j in snapshots.values())
    report.final = {j: v["status"] for j, v in snapshots.items()}
    for s in subs:
        job = snapshots[s.job_id]
        report.resumes += job["resume_count"]
        report.attempts += job["attempts"]
        report.interruptions += job["interruptions"]
        if job["status"] != "complete":
            problems.append(f"job {s.job_id} ({s.kind}) ended {job['status']}: {job['error']}")
        d1 = listed.get(s.job_id)
        fields = ("status", "progress", "frame", "total_frames", "attempts", "resume_count", "interruptions", "seq",
                  "error", "output_ready", "gpu_seconds", "checkpoint")
        differ = [f"{f}: D1 {d1.get(f)!r} DO {job.get(f)!r}" for f in fields if d1 and d1.get(f) != job.get(f)]
        if d1 is None or differ:
            problems.append(f"job {s.job_id}: D1 and DO disagree: {differ or 'not listed'}")
        else:
            report.agree += 1

    # R2: one output for each complete job (each lease has its own key; what no lease committed is gone),
    # and no checkpoint left behind.
    r2 = R2(r2_config(stack))
    keys = list(r2.keys(""))
    outputs: dict[str, list[str]] = {}
    for k in keys:
        if k.startswith("videos/output/"):
            outputs.setdefault(k.split("/")[2].removesuffix(".mp4"), []).append(k)
    complete = {s.job_id for s in subs if snapshots[s.job_id]["status"] == "complete"}
    if set(outputs) != complete or any(len(found) != 1 for found in outputs.values()):
        problems.append(f"outputs in R2 differ from the complete jobs: extra {sorted(set(outputs) - complete)}, "
                        f"missing {sorted(complete - set(outputs))}, "
                        f"more than one {sorted(j for j, found in outputs.items() if len(found) > 1)}")
    orphans = [k for k in keys if k.startswith("checkpoints/")]
    report.orphans = len(orphans)
    if orphans:
        problems.append(f"{len(orphans)} checkpoint object(s) left in R2: {orphans[:10]}")
    strays = [k for k in keys if not k.startswith(("videos/output/", "videos/raw/", "checkpoints/"))]
    if strays:
        problems.append(f"unexpected objects in R2: {strays[:10]}")

    # Each output against its uninterrupted reference.
    log(t0, "comparing outputs with the uninterrupted references")
    out_dir = workdir / "outputs"
    out_dir.mkdir(exist_ok=True)
    for s in subs:
        ref = s.ref
        if snapshots[s.job_id]["status"] != "complete" or len(outputs.get(s.job_id, ())) != 1:
            continue
        path = out_dir / f"{s.job_id}.mp4"
        r2.download(outputs[s.job_id][0], str(path))
        try:
            out, out_audio = decode_planes(str(path))
        except Exception as e:
            problems.append(f"job {s.job_id}: output is not a valid video: {e}")
            continue
        ref_frames, ref_audio = decode_planes(ref["path"])
        if len(out) != s.expected_frames or len(out) != len(ref_frames):
            problems.append(f"job {s.job_id}: {len(out)} frames, expected {s.expected_frames}")
            continue
        if out_audio != ref_audio:
            problems.append(f"job {s.job_id}: audio stream {'present' if out_audio else 'missing'} unlike the reference")
        off_boundary = [line["from_frame"] for _, line in per_job_lines[s.job_id]
                        if line.get("msg") == "resuming" and line["from_frame"] % cfg.checkpoint_frames]
        # Frames before the segment that held the first off-boundary resume are cut exactly as in the
        # uninterrupted render: identical. From there on, segments are cut elsewhere: PSNR.
        cf = cfg.checkpoint_frames
        exact_until = min(off_boundary) // cf * cf if off_boundary else len(out)
        frame_problems, stats = compare_frames(out, ref_frames, exact_until)
        problems += [f"job {s.job_id} ({s.kind}): {p}" for p in frame_problems]
        if stats["identical"] == len(out):
            report.md5_identical += 1
        else:
            report.psnr_checked += 1
            report.psnr_min = min(report.psnr_min, stats["psnr_min"])
        path.unlink()

    # Exactly one accepted complete per job: worker logs, plus completes the proxy saw accepted whose
    # answer never reached the pod; the DO broadcast at most one complete.
    lease_pod = {r["lease_id"]: r["pod_id"] for r in proxy.records if r["action"] == "claim" and r.get("lease_id")}
    for s in subs:
        pods = {name for name, line in per_job_lines[s.job_id] if line.get("msg") == "complete"}
        pods |= {lease_pod.get(r.get("lease_id"), "?") for r in proxy.records
                 if r["job_id"] == s.job_id and r["action"] == "complete" and r["status"] == 200 and not r.get("ignored")}
        unsure = [name for name, line in per_job_lines[s.job_id] if line.get("msg", "").startswith("complete report failed")]
        expected = 1 if snapshots[s.job_id]["status"] == "complete" else 0
        if len(pods) > 1 or watches[s.job_id].completes() > 1:
            report.duplicate_completes += 1
            problems.append(f"job {s.job_id}: completed by {sorted(pods)}; DO complete events: "
                            f"{watches[s.job_id].completes()}")
        elif len(pods) != expected and not (unsure and expected == 1):
            problems.append(f"job {s.job_id}: {len(pods)} accepted complete report(s), expected {expected}")

    # Resume counts against the interruptions caused. An injection is effective when the job was
    # claimed again after it: a started/resumed event after the confirmed seq in the DO's stream, or,
    # where the stream has a gap (the restart), a `claimed` line another worker logged after the signal.
    effective_by_job: dict[str, list[Injection]] = defaultdict(list)
    for inj in report.injections:
        if inj.job_id is None or inj.kind == "lose":
            continue
        job = snapshots[inj.job_id]
        events = watches[inj.job_id].by_seq()
        end = claim_end(events, inj.confirm_seq)
        inj.ended_by = end["type"] if end else None
        later_events = [e for seq, e in sorted(events.items()) if seq > inj.confirm_seq
                        and e["type"] in ("started", "resumed")]
        later_lines = [line for name, line in per_job_lines[inj.job_id] if line.get("msg") == "claimed"
                       and name != inj.worker and line["ts"] > inj.at]
        inj.effective = bool(later_events or later_lines)
        if not inj.effective:
            inj.note = ("the job finished in the interrupted claim" if inj.ended_by == "complete"
                        else f"no later claim seen (claim ended by {inj.ended_by})")
            continue
        effective_by_job[inj.job_id].append(inj)
        # The claim after a checkpoint is a resume, and the DO counts it.
        for e in later_events:
            if e["type"] != "resumed" or e.get("resume_count", 0) < inj.resume_count + 1:
                problems.append(f"job {inj.job_id}: claim after a {inj.kind} of a checkpointed claim (resume_count "
                                f"{inj.resume_count}) announced as {e}")
        for line in later_lines:
            if line["resume_count"] < inj.resume_count + 1:
                problems.append(f"job {inj.job_id}: claim after a {inj.kind} of a checkpointed claim (resume_count "
                                f"{inj.resume_count}) granted with resume_count {line['resume_count']}")
        if job["resume_count"] < inj.resume_count + 1:
            problems.append(f"job {inj.job_id}: resume_count {job['resume_count']} after a {inj.kind} of the claim that "
                            f"had stored a checkpoint at resume_count {inj.resume_count}")
        if inj.kind == "kill" and end and end["type"] == "requeued" and "heartbeat" not in end.get("reason", ""):
            problems.append(f"job {inj.job_id}: the killed pod's claim ended by {end}, not by its lease expiring")
    for job_id, injs in effective_by_job.items():
        job = snapshots[job_id]
        kills = sum(i.kind == "kill" and i.ended_by == "requeued" for i in injs)
        stops = sum(i.kind in ("term", "spot") and i.ended_by == "requeued" and "interruptions" in
                    (claim_end(watches[job_id].by_seq(), i.confirm_seq) or {}) for i in injs)
        if job["resume_count"] < len(injs):
            problems.append(f"job {job_id}: resume_count {job['resume_count']} < {len(injs)} effective interruptions")
        if job["attempts"] < kills:
            problems.append(f"job {job_id}: attempts {job['attempts']} < {kills} killed claims")
        if job["interruptions"] < stops:
            problems.append(f"job {job_id}: interruptions {job['interruptions']} < {stops} spot-stopped claims")

    # A job no fault touched was never re-queued or resumed.
    restarts = [(i.at, i.until) for i in report.injections if i.kind == "restart"]
    faulted_jobs = {r["job_id"] for r in proxy.records if r["fault"] or (r["status"] or 0) >= 500}
    for s in subs:
        job = snapshots[s.job_id]
        lines = per_job_lines[s.job_id]
        span = [line["ts"] for _, line in lines]
        touched = (s.job_id in faulted_jobs or any(i.job_id == s.job_id for i in report.injections)
                   or any(line.get("level") in ("warning", "error") for _, line in lines)
                   or any(name in fleet.signalled for name, _ in lines)
                   or (span and any(a - cfg.lease_timeout_s <= max(span) and min(span) <= b + cfg.lease_timeout_s
                                    for a, b in restarts)))
        if not touched and (job["resume_count"], job["attempts"], job["interruptions"]) != (0, 0, 0):
            problems.append(f"job {s.job_id}: no fault touched it, yet resume_count {job['resume_count']}, attempts "
                            f"{job['attempts']}, interruptions {job['interruptions']}")


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=50)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--proxied-workers", type=int, default=1)
    p.add_argument("--kills", type=int)
    p.add_argument("--terms", type=int)
    p.add_argument("--spots", type=int)
    p.add_argument("--losses", type=int)
    p.add_argument("--no-restart", action="store_true")
    p.add_argument("--upscale-jobs", type=int, default=2)
    p.add_argument("--checkpoint-frames", type=int, default=15)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, help="default: .cache/chaos")
    p.add_argument("--keep", action="store_true", help="keep the stack's state, logs and outputs")
    args = p.parse_args(argv)
    # Stop cleanly (stack, workers) on SIGTERM, and on SIGINT even when started in the background.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cfg = ChaosConfig(jobs=args.jobs, workers=args.workers, proxied_workers=args.proxied_workers, kills=args.kills,
                      terms=args.terms, spots=args.spots, losses=args.losses, restart=not args.no_restart,
                      upscale_jobs=args.upscale_jobs,
                      checkpoint_frames=args.checkpoint_frames, seed=args.seed, workdir=args.workdir, keep=args.keep)
    report = run_chaos(cfg)
    print()
    print(report.details())
    print(report.table())
    for problem in report.problems:
        print("PROBLEM:", problem)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
