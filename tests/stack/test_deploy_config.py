"""wrangler.toml stays deployable: a dry-run bundles the Python Worker with its vendored packages."""

import json

from scripts.localstack import ROOT, dev_secrets, write_local_config, wrangler


def test_wrangler_deploy_dry_run(tmp_path):
    out = wrangler("deploy", "--dry-run", "--outdir", str(tmp_path), check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "entry.py").exists() or any(tmp_path.rglob("entry.py"))


def test_production_config_has_no_local_only_settings():
    """What only local runs add (the dev-bundle flag, a push consumer for the queue, S3 credentials for
    the local bucket) stays out of wrangler.toml, and the Worker reads its vars with the local-only
    features off."""
    from types import SimpleNamespace

    from controlplane.settings import Settings
    from scripts.localstack import DEV_BUNDLE_FLAG, production_config

    prod = production_config()
    assert DEV_BUNDLE_FLAG not in prod["compatibility_flags"]
    assert "consumers" not in prod["queues"], "production's pods pull over HTTP"
    assert not [bucket["binding"] for bucket in prod["r2_buckets"] if "local_dev" in bucket]
    settings = Settings.from_env(SimpleNamespace(**prod["vars"]))
    assert not settings.allow_anonymous and not settings.local_pull_queue
    assert "WEBHOOK_ALLOW_LOOPBACK" not in prod["vars"], "loopback webhooks are for local tests only"


def test_local_config_adds_the_push_consumer_and_s3_credentials(tmp_path):
    local = json.loads(write_local_config(tmp_path / "w.json", dev_secrets()).read_text())
    assert local["queues"]["consumers"][0]["queue"] == local["queues"]["producers"][0]["queue"] == "gpu-jobs"
    assert "experimental_s3_credentials" in local["r2_buckets"][0]["local_dev"]


def test_health_has_what_the_autoscaler_reads(stack):
    """gpu-worker/k8s/scaledobject.yaml scales on queue_backlog and by_status.processing (the JSON as the
    autoscaler reads it: raw)."""
    import httpx

    health = httpx.get(f"{stack.url}/health").json()
    assert isinstance(health["queue_backlog"], int)
    assert set(health["by_status"]) == {"pending", "processing", "complete", "error", "cancelled"}
    assert all(isinstance(n, int) for n in health["by_status"].values())


def test_local_runs_use_the_production_flags_plus_only_the_dev_bundle_flag(tmp_path):
    from scripts.localstack import DEV_BUNDLE_FLAG, LocalStack, production_config

    stack = LocalStack(persist_dir=tmp_path)
    cmd = stack.dev_command(tmp_path / "w.json")
    flags = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--compatibility-flags"]
    assert sorted(flags) == sorted([*production_config()["compatibility_flags"], DEV_BUNDLE_FLAG])


def test_local_config_differs_from_production_only_by_consumer_and_s3_credentials(tmp_path):
    from scripts.localstack import production_config

    prod = production_config()
    local = json.loads(write_local_config(tmp_path / "w.json", dev_secrets()).read_text())
    del local["queues"]["consumers"]
    for bucket in local["r2_buckets"]:
        assert set(bucket.pop("local_dev")) == {"experimental_s3_credentials"}
    assert local == prod


def _imported_modules(path):
    import ast

    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_every_worker_import_resolves_to_stdlib_runtime_or_python_modules():
    """The production runtime provides the standard library, `js` and `pyodide`; everything else must be
    the Worker's own code or vendored in python_modules/ (the `workers` SDK included)."""
    import sys

    src = ROOT / "workers/src"
    own = {p.stem for p in src.glob("*.py")} | {p.name for p in src.iterdir() if (p / "__init__.py").exists()}
    vendored = {p.name.removesuffix(".py") for p in (ROOT / "python_modules").iterdir()}
    runtime = {"js", "pyodide"}
    unresolved = {}
    for path in src.rglob("*.py"):
        for module in _imported_modules(path):
            if not (module in sys.stdlib_module_names or module in runtime or module in own or module in vendored):
                unresolved.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not unresolved, f"imports that production cannot resolve: {unresolved}"
    assert "workers" in vendored


def test_config_tells_clients_the_upload_settings(stack):
    from gpu_export import Client
    from scripts.localstack import production_config

    with Client(stack.url) as client:
        config = client.config()
    assert config.max_upload_bytes == int(stack.vars["MAX_UPLOAD_BYTES"])  # the stack's own
    assert config.multipart_threshold_bytes == int(production_config()["vars"]["MULTIPART_THRESHOLD_BYTES"])
    assert config.allow_anonymous is (stack.vars["ALLOW_ANONYMOUS"] == "true")
