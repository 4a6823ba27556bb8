"""gpu_export.cost: the arithmetic, the price table, and `gpu-export cost` against a real local control
plane with GPU time reported by a pod."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict

import pytest

from pydantic import ValidationError

from gpu_export import cost
from gpu_export.cli import main as cli_main
from jobspec import Health

from ..api_helpers import claim

HEALTH = {"ok": True, "queue_backlog": 2, "by_status": {"pending": 2, "processing": 1, "complete": 40, "error": 2},
          "gpu_seconds": 720.0, "live_pods": 1, "dead_letters": 0, "estimated_gpu_cost_usd": 0.046}


def health(**fields) -> Health:
    """A /health answer: HEALTH with these fields instead."""
    return Health.model_validate({**HEALTH, **fields})


def test_totals_per_job_and_the_design_comparison():
    r = cost.summarize(health(), 0.23, "g4dn.2xlarge")
    assert r.gpu_hours == pytest.approx(0.2)
    assert r.total_usd == pytest.approx(0.046)  # 0.2 h x $0.23
    assert r.completed_jobs == 40
    assert r.cost_per_completed_job_usd == pytest.approx(0.00115)
    assert r.gpu_seconds_per_completed_job == pytest.approx(18.0)
    design = cost.DESIGN_COST_PER_JOB_USD
    assert r.design_gpu_seconds_per_job == pytest.approx(design / 0.23 * 3600)  # what the design's $ buys
    assert r.ratio_to_design == pytest.approx(0.00115 / design)
    assert r.control_plane_estimate_usd == pytest.approx(0.046)


def test_failed_and_interrupted_time_is_charged_to_the_completed_jobs():
    """gpu_seconds covers every job; only completed jobs divide it."""
    r = cost.summarize(health(gpu_seconds=3600, by_status={"complete": 1, "error": 3}), 0.16)
    assert r.cost_per_completed_job_usd == pytest.approx(0.16)


def test_no_completed_job_yet():
    r = cost.summarize(health(gpu_seconds=0, by_status={}, estimated_gpu_cost_usd=0), 0.30, "g5.xlarge")
    assert r.total_usd == 0 and r.cost_per_completed_job_usd is None and r.ratio_to_design is None
    assert "n/a" in cost.render(r)


def test_zero_price_keeps_the_json_valid():
    r = cost.summarize(health(), 0.0)
    assert r.total_usd == 0 and r.design_gpu_seconds_per_job is None
    json.loads(json.dumps(asdict(r), allow_nan=False))


@pytest.mark.parametrize("answer", [{}, {**HEALTH, "gpu_seconds": "lots"}])
def test_bad_health_answers_are_refused_by_the_model(answer):
    with pytest.raises(ValidationError):
        Health.model_validate(answer)


def test_negative_gpu_seconds():
    with pytest.raises(cost.CostError):
        cost.summarize(health(gpu_seconds=-1), 0.23)


def test_price_table_overrides(tmp_path):
    assert cost.load_prices(env={}) == cost.DEFAULT_PRICES
    merged = cost.load_prices('{"g4dn.2xlarge": 0.25, "g6.xlarge": 0.28}', env={})
    assert merged["g4dn.2xlarge"] == 0.25 and merged["g6.xlarge"] == 0.28
    assert merged["g4dn.xlarge"] == cost.DEFAULT_PRICES["g4dn.xlarge"]  # the others kept
    path = tmp_path / "prices.json"
    path.write_text('{"g5.xlarge": 0.33}')
    assert cost.load_prices(env={cost.PRICES_ENV: str(path)})["g5.xlarge"] == 0.33
    for bad in ('{"x": -1}', '{"x": "cheap"}', "[1]", '{"x": true}', "{not json"):
        with pytest.raises(cost.CostError):
            cost.load_prices(bad, env={})
    with pytest.raises(cost.CostError, match="no price for 'p4d.24xlarge'"):
        cost.price_for("p4d.24xlarge", cost.DEFAULT_PRICES)


def test_cost_of_jobs_reported_by_a_pod(prod_stack, identity_provider, client_for, clip, capsys):
    """On a stack that no GPU worker pulls from, so that these jobs are the test pod's to claim."""
    stack = prod_stack
    api = client_for(stack, identity_provider.token(f"cost-{secrets.token_hex(4)}", "HS256"))
    key = api.upload(clip)
    spec = {"type": "overlay", "input_video_key": key, "params": {"highlight_regions": [
        {"keyframes": [{"t": 0, "x": 0.5, "y": 0.5, "rx": 0.2, "ry": 0.2}]}]}}
    jobs = [api.create(spec).job_id for _ in range(2)]
    before = api.health()
    pod, done = claim(stack, jobs[0], "pod-cost-test")
    pod.report(jobs[0], "complete", done.lease_id, output_key=done.output_key, frames=60, size_bytes=1000,
               gpu_seconds=36.0)
    _, failed = claim(stack, jobs[1], "pod-cost-test")
    pod.report(jobs[1], "fail", failed.lease_id, reason="corrupt input", retryable=False, gpu_seconds=9.0)

    assert cli_main(["--url", stack.url, "--json", "cost"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["gpu_seconds"] == pytest.approx(before.gpu_seconds + 45.0)
    assert report["jobs_by_status"]["complete"] == before.by_status["complete"] + 1
    assert report["jobs_by_status"]["error"] == before.by_status["error"] + 1
    assert report["total_usd"] == pytest.approx(report["gpu_seconds"] / 3600 * 0.23)
    # The control plane prices the same seconds with GPU_PRICE_PER_HOUR from wrangler.toml (0.23).
    assert report["control_plane_estimate_usd"] == pytest.approx(report["total_usd"], abs=1e-6)

    assert cli_main(["--url", stack.url, "cost", "--price-per-hour", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out)["total_usd"] == pytest.approx(report["gpu_seconds"] / 3600 * 0.5)
    assert cli_main(["--url", stack.url, "cost", "--instance", "p5.48xlarge"]) == 2
    assert "no price for 'p5.48xlarge'" in capsys.readouterr().err
