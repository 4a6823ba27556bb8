"""Observability on the real stack: a JSON log line per request and per job state change (users only
as a hash), GET /metrics in Prometheus text behind its token (parsed by prometheus_client), /health
public and small."""

from __future__ import annotations

import hashlib
import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.polling import wait_until

from tests.api_helpers import claim, overlay_job, video_bytes


def log_lines(stack, since: int) -> list[dict]:
    lines = []
    for line in stack.log_path.read_bytes()[since:].decode(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


def wait_for_line(stack, since: int, match, timeout=10.0) -> dict:
    return wait_until(lambda: [x for x in log_lines(stack, since) if match(x)], timeout,
                      lambda: "no such log line; last lines: " + json.dumps(log_lines(stack, since)[-5:]))[-1]


def scrape(stack) -> dict:
    r = httpx.get(f"{stack.url}/metrics", headers={"authorization": f"Bearer {stack.vars['METRICS_TOKEN']}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(r.text) for s in f.samples}


def test_one_json_line_per_request_and_per_state_change(prod_stack, identity_provider, client_for):
    api = client_for(prod_stack, identity_provider.token("observed-user", "HS256"))
    job_id = api.create(overlay_job(api.upload(video_bytes(b"v" * 400)))).job_id
    since = prod_stack.log_path.stat().st_size
    api.get(job_id)
    line = wait_for_line(prod_stack, since, lambda x: x.get("event") == "request" and x.get("job_id") == job_id)
    assert line["route"] == "/api/jobs/{job_id}" and line["method"] == "GET" and line["status"] == 200
    assert line["user"] == hashlib.sha256(b"observed-user").hexdigest()[:12] and isinstance(line["ms"], float)
    assert "observed-user" not in prod_stack.log_path.read_text(errors="replace")[since:]

    api.cancel(job_id)
    change = wait_for_line(prod_stack, since, lambda x: x.get("event") == "job_state" and x.get("job_id") == job_id)
    assert change["status"] == "cancelled" and change["changes"] == ["cancelled"]

    httpx.get(f"{prod_stack.url}/api/jobs/nope")  # no credential
    refused = wait_for_line(prod_stack, since, lambda x: x.get("event") == "request" and x.get("status") == 401)
    assert refused["user"] is None


def test_metrics_need_the_token(prod_stack):
    assert httpx.get(f"{prod_stack.url}/metrics").status_code == 401
    r = httpx.get(f"{prod_stack.url}/metrics", headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_metrics_count_jobs_and_lease_expiries(prod_stack, identity_provider, client_for):
    before = scrape(prod_stack)
    api = client_for(prod_stack, identity_provider.token("metrics-user", "HS256"))
    job_id = api.create(overlay_job(api.upload(video_bytes(b"v" * 400)))).job_id
    claim(prod_stack, job_id, "silent-pod")
    # LEASE_TIMEOUT_S=3: the alarm takes the lease back
    wait_until(lambda: api.get(job_id).status == "pending", 15, "the lease to expire")
    after = scrape(prod_stack)
    assert after[("export_lease_expiries_total", ())] == before[("export_lease_expiries_total", ())] + 1
    assert after[("export_jobs", (("status", "pending"),))] >= 1
    assert after[("export_queue_backlog", ())] == after[("export_jobs", (("status", "pending"),))]
    for name in ("export_live_pods", "export_gpu_seconds_total", "export_webhook_attempts_total"):
        assert (name, ()) in after
    assert ("export_webhook_deliveries_total", (("result", "failed"),)) in after


def test_health_stays_public_and_small(prod_stack):
    r = httpx.get(f"{prod_stack.url}/health")
    assert r.status_code == 200 and len(r.content) < 1024
    assert {"ok", "queue_backlog", "by_status", "live_pods"} <= set(r.json())


def test_heartbeats_write_no_state_change_lines(prod_stack, identity_provider, client_for):
    """A working pod heart-beats every 10 s: those are not state changes and log nothing of their own."""
    api = client_for(prod_stack, identity_provider.token("heartbeat-user", "HS256"))
    job_id = api.create(overlay_job(api.upload(video_bytes(b"v" * 400)))).job_id
    since = prod_stack.log_path.stat().st_size
    pod, grant = claim(prod_stack, job_id, "steady-pod")
    for _ in range(3):
        pod.report(job_id, "heartbeat", grant.lease_id)
    api.cancel(job_id)
    wait_for_line(prod_stack, since, lambda x: x.get("event") == "job_state" and x.get("status") == "cancelled"
                  and x.get("job_id") == job_id)
    changes = [x["changes"] for x in log_lines(prod_stack, since)
               if x.get("event") == "job_state" and x.get("job_id") == job_id]
    assert changes == [["started"], ["cancelled"]]
