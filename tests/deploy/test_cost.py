"""gpu_worker.cost: the arithmetic, the price table, the `cost` subcommand of the worker CLI (against
a canned /health, then against a real local control plane with GPU time reported by a pod)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gpu_worker import cost
from gpu_worker.__main__ import main as worker_main

HEALTH = {"ok": True, "queue_backlog": 2, "by_status": {"pending": 2, "processing": 1, "complete": 40, "error": 2},
          "gpu_seconds": 720.0, "live_pods": 1, "dead_letters": 0, "estimated_gpu_cost_usd": 0.046}


def test_default_prices_are_the_design_table():
    assert cost.DEFAULT_PRICES == {"g4dn.xlarge": 0.16, "g4dn.2xlarge": 0.23, "g4dn.4xlarge": 0.36, "g5.xlarge": 0.30}
    assert cost.DESIGN_COST_PER_JOB_USD == 0.00026


def test_totals_per_job_and_the_design_comparison():
    r = cost.summarize(HEALTH, 0.23, "g4dn.2xlarge")
    assert r.gpu_hours == pytest.approx(0.2)
    assert r.total_usd == pytest.approx(0.046)  # 0.2 h x $0.23
    assert r.completed_jobs == 40
    assert r.cost_per_completed_job_usd == pytest.approx(0.00115)
    assert r.gpu_seconds_per_completed_job == pytest.approx(18.0)
    assert r.design_gpu_seconds_per_job == pytest.approx(0.00026 / 0.23 * 3600)  # ~4.07 s
    assert r.ratio_to_design == pytest.approx(0.00115 / 0.00026)
    assert r.control_plane_estimate_usd == pytest.approx(0.046)


def test_failed_and_interrupted_time_is_charged_to_the_completed_jobs():
    """gpu_seconds covers every job; only completed jobs divide it."""
    r = cost.summarize({"gpu_seconds": 3600, "by_status": {"complete": 1, "error": 3}}, 0.16)
    assert r.cost_per_completed_job_usd == pytest.approx(0.16)


def test_no_completed_job_yet():
    r = cost.summarize({"gpu_seconds": 0, "by_status": {}}, 0.30, "g5.xlarge")
    assert r.total_usd == 0 and r.cost_per_completed_job_usd is None and r.ratio_to_design is None
    assert "n/a" in cost.render(r)


def test_zero_price_keeps_the_json_valid():
    r = cost.summarize(HEALTH, 0.0)
    assert r.total_usd == 0 and r.design_gpu_seconds_per_job is None
    json.loads(json.dumps(asdict(r), allow_nan=False))


@pytest.mark.parametrize("health", [{}, {"gpu_seconds": "lots"}, {"gpu_seconds": -1}])
def test_bad_health_answers(health):
    with pytest.raises(cost.CostError):
        cost.summarize(health, 0.23)


def test_price_table_overrides(tmp_path):
    assert cost.load_prices(env={}) == cost.DEFAULT_PRICES
    merged = cost.load_prices('{"g4dn.2xlarge": 0.25, "g6.xlarge": 0.28}', env={})
    assert merged["g4dn.2xlarge"] == 0.25 and merged["g6.xlarge"] == 0.28 and merged["g4dn.xlarge"] == 0.16
    path = tmp_path / "prices.json"
    path.write_text('{"g5.xlarge": 0.33}')
    assert cost.load_prices(env={cost.PRICES_ENV: str(path)})["g5.xlarge"] == 0.33
    for bad in ('{"x": -1}', '{"x": "cheap"}', "[1]", '{"x": true}', "{not json"):
        with pytest.raises(cost.CostError):
            cost.load_prices(bad, env={})
    with pytest.raises(cost.CostError, match="no price for 'p4d.24xlarge'"):
        cost.price_for("p4d.24xlarge", cost.DEFAULT_PRICES)


@pytest.fixture
def health_server():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(HEALTH).encode() if self.path == "/health" else b"{}"
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_cost_subcommand_of_the_worker_cli(health_server, capsys):
    assert worker_main(["cost", "--api-url", health_server + "/", "--instance", "g4dn.xlarge", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["price_per_hour_usd"] == 0.16 and out["total_usd"] == pytest.approx(0.032)
    assert out["cost_per_completed_job_usd"] == pytest.approx(0.0008)

    assert worker_main(["cost", "--api-url", health_server]) == 0
    text = capsys.readouterr().out
    assert "$0.046000" in text and "per completed job:   $0.001150 (18.0 GPU-s)" in text
    assert "4.42x (over the estimate)" in text

    assert worker_main(["cost", "--api-url", health_server, "--price-per-hour", "0.01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ratio_to_design"] == pytest.approx(0.002 / 40 / 0.00026)

    assert worker_main(["cost", "--api-url", health_server, "--instance", "p5.48xlarge"]) == 2
    assert "no price for" in capsys.readouterr().err


def test_worker_cli_is_unchanged_without_the_subcommand():
    out = subprocess.run([sys.executable, "-m", "gpu_worker", "--api-url", "http://x"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "missing --secret (GPU_WORKER_SECRET)" in out.stderr


# ---------------------------------------------------------------- against the real control plane


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from localstack import LocalStack
    with LocalStack(persist_dir=tmp_path_factory.mktemp("cost-stack")) as s:
        yield s


@pytest.mark.stack
def test_cost_of_jobs_reported_by_a_pod(stack):
    import httpx

    from gpu_worker.control import ControlPlane
    from tests.stack.conftest import video_bytes
    http = httpx.Client(base_url=stack.url, timeout=30)
    http.headers["authorization"] = "Bearer " + http.post("/api/auth/anonymous").json()["token"]
    data = video_bytes(bytes(2048))  # the Worker reads an input's first bytes
    up = http.post("/api/videos/upload-url", json={"filename": "a.mp4", "content_type": "video/mp4",
                                                    "size_bytes": len(data)}).json()
    assert httpx.put(up["upload_url"], content=data, headers=up["headers"]).status_code == 200
    spec = {"type": "overlay", "input_video_key": up["video_key"], "params": {"highlight_regions": [
        {"keyframes": [{"t": 0, "x": 0.5, "y": 0.5, "rx": 0.2, "ry": 0.2}]}]}}
    jobs = [http.post("/api/jobs", json=spec).json()["job_id"] for _ in range(2)]
    pod = ControlPlane(stack.url, stack.vars["WORKER_SECRET"], "pod-cost-test")
    done = pod.claim(jobs[0], ["libx264"])
    pod.report(jobs[0], "complete", done.lease_id, output_key=done.output_key, frames=60, size_bytes=1000,
               gpu_seconds=36.0)
    failed = pod.claim(jobs[1], ["libx264"])
    pod.report(jobs[1], "fail", failed.lease_id, reason="corrupt input", retryable=False, gpu_seconds=9.0)

    out = subprocess.run([sys.executable, "-m", "gpu_worker", "cost", "--api-url", stack.url, "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["gpu_seconds"] == pytest.approx(45.0)
    assert report["completed_jobs"] == 1 and report["jobs_by_status"]["error"] == 1
    assert report["total_usd"] == pytest.approx(45 / 3600 * 0.23)
    assert report["cost_per_completed_job_usd"] == pytest.approx(45 / 3600 * 0.23)
    # The control plane prices the same seconds with GPU_PRICE_PER_HOUR from wrangler.toml (0.23).
    assert report["control_plane_estimate_usd"] == pytest.approx(report["total_usd"], abs=1e-6)
