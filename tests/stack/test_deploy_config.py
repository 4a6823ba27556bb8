"""wrangler.toml stays deployable: a dry-run bundles the Python Worker with its vendored packages."""

import json

from localstack import ROOT, wrangler


def test_wrangler_deploy_dry_run(tmp_path):
    out = wrangler("deploy", "--dry-run", "--outdir", str(tmp_path), check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "entry.py").exists() or any(tmp_path.rglob("entry.py"))


def test_production_config_has_no_local_only_settings():
    text = (ROOT / "wrangler.toml").read_text()
    for local_only in ("python_workers_development", "experimental_s3_credentials", "queues.consumers"):
        assert local_only not in text
    local = json.loads((ROOT / "wrangler.local.json").read_text()) if (ROOT / "wrangler.local.json").exists() else None
    if local:
        assert local["queues"]["consumers"][0]["queue"] == "gpu-jobs"
