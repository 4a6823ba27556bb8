"""wrangler.toml stays deployable: a dry-run bundles the Python Worker with its vendored packages."""

import json

from localstack import ROOT, dev_secrets, write_local_config, wrangler


def test_wrangler_deploy_dry_run(tmp_path):
    out = wrangler("deploy", "--dry-run", "--outdir", str(tmp_path), check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "entry.py").exists() or any(tmp_path.rglob("entry.py"))


def test_production_config_has_no_local_only_settings():
    text = (ROOT / "wrangler.toml").read_text()
    for local_only in ("python_workers_development", "experimental_s3_credentials", "queues.consumers"):
        assert local_only not in text


def test_local_config_adds_the_push_consumer_and_s3_credentials(tmp_path):
    local = json.loads(write_local_config(tmp_path / "w.json", dev_secrets()).read_text())
    assert local["queues"]["consumers"][0]["queue"] == local["queues"]["producers"][0]["queue"] == "gpu-jobs"
    assert "experimental_s3_credentials" in local["r2_buckets"][0]["local_dev"]


def test_health_has_what_the_autoscaler_reads(stack):
    """gpu-worker/k8s/scaledobject.yaml scales on queue_backlog and by_status.processing."""
    import httpx

    health = httpx.get(f"{stack.url}/health").json()
    assert isinstance(health["queue_backlog"], int)
    assert set(health["by_status"]) == {"pending", "processing", "complete", "error", "cancelled"}
    assert all(isinstance(n, int) for n in health["by_status"].values())
