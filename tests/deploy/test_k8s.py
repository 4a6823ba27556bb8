"""gpu-worker/k8s, offline: core kinds against the Kubernetes 1.37 JSON schemas (kubernetes-validate,
strict: unknown fields fail), KEDA and Karpenter kinds against their CRD schemas (crd-models/), and
the properties the production path depends on, cross-checked with the worker's CLI and the image."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import K8S, ROOT, check_custom_resources, load_yaml_docs

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


def cli_env_names() -> set[str]:
    from gpu_worker.__main__ import parser
    return {a.help.rsplit("[", 1)[1].rstrip("]") for a in parser()._actions if a.help and "[GPU_WORKER_" in a.help}


def test_every_worker_setting_is_a_real_option_and_the_required_ones_are_given(manifests):
    from gpu_worker.__main__ import REQUIRED, env_name
    from gpu_worker.upscale import WEIGHTS_DIR_ENV
    known = cli_env_names() | {WEIGHTS_DIR_ENV}
    container = pod_spec(manifests)["containers"][0]
    config = env_file(K8S / "worker-config.env")
    secret_keys = set(re.findall(r"GPU_WORKER_\w+", "".join(
        line for line in (K8S / "deployment.yaml").read_text().splitlines() if line.strip().startswith("#"))))
    given = set(config) | {e["name"] for e in container["env"]} | secret_keys
    worker_keys = {k for k in given if k.startswith("GPU_WORKER_")}
    assert worker_keys <= known, f"not options of python -m gpu_worker: {worker_keys - known}"
    missing = {env_name("--" + r.replace("_", "-")) for r in REQUIRED} - worker_keys
    assert not missing, f"required settings not given: {missing}"
    # The secrets come from the Secret, never from the ConfigMap.
    for key in ("GPU_WORKER_SECRET", "GPU_WORKER_QUEUE_TOKEN", "GPU_WORKER_R2_SECRET_ACCESS_KEY"):
        assert key not in config and key in secret_keys
    assert {"secretRef": {"name": "gpu-worker-secrets"}} in container["envFrom"]


def test_deploy_script_writes_the_same_keys_as_the_manifests():
    script = (ROOT / "scripts/deploy.sh").read_text()
    written = set(re.findall(r"^(?:\s*echo \")?(GPU_WORKER_\w+)=", script, re.M))
    config = set(env_file(K8S / "worker-config.env"))
    assert {"GPU_WORKER_API_URL", "GPU_WORKER_ACCOUNT_ID", "GPU_WORKER_QUEUE_ID", "GPU_WORKER_R2_ENDPOINT",
            "GPU_WORKER_R2_BUCKET"} <= written & config
    assert {"GPU_WORKER_SECRET", "GPU_WORKER_QUEUE_TOKEN", "GPU_WORKER_R2_ACCESS_KEY_ID",
            "GPU_WORKER_R2_SECRET_ACCESS_KEY"} <= written


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
    config = env_file(K8S / "worker-config.env")
    checkpoint_s = float(config["GPU_WORKER_CHECKPOINT_SECONDS"])
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


def test_weights_init_container_verifies_the_pinned_sums(manifests):
    init = pod_spec(manifests)["initContainers"][0]
    script = init["args"][0]
    assert "/app/scripts/fetch_weights.py" in script and "sha256sum --check --strict" in script
    assert "/app/weights.sha256" in script
    dockerfile = (ROOT / "gpu-worker/Dockerfile").read_text()
    assert "/app/scripts/fetch_weights.py" in dockerfile and "/app/weights.sha256" in dockerfile


# ---------------------------------------------------------------- autoscaling


def test_scaled_object_scales_the_deployment_on_queued_and_running_jobs(manifests):
    so = one(manifests, "ScaledObject")["spec"]
    assert so["scaleTargetRef"]["name"] == one(manifests, "Deployment")["metadata"]["name"]
    assert so["minReplicaCount"] == 0 and so["maxReplicaCount"] >= 1
    triggers = {t["name"]: t for t in so["triggers"]}
    assert all(t["type"] == "metrics-api" for t in triggers.values())
    assert triggers["pending"]["metadata"]["valueLocation"] == "queue_backlog"
    modifiers = so["advanced"]["scalingModifiers"]
    assert set(re.findall(r"[a-z_]+", modifiers["formula"])) == set(triggers)
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
