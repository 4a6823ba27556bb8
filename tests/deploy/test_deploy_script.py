"""scripts/deploy.sh without a Cloudflare account: shellcheck, every wrangler command and flag it uses
checked against the installed wrangler's own help, the dry run, and two real runs against a fake
wrangler (first run creates everything, second run changes nothing but what is redone every time)."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import DEPLOY_SCRIPT, NODE_BIN, ROOT, WRANGLER, deploy, node_env

def dry_run(**env) -> list[list[str]]:
    out = subprocess.run(["bash", str(DEPLOY_SCRIPT), "--dry-run"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return [shlex.split(line[2:], comments=True) for line in out.stdout.splitlines() if line.startswith("+ ")]


def queried_commands() -> list[list[str]]:
    """The read-only look-ups (`query wrangler ...`), which a dry run does not print."""
    cmds = []
    for m in re.finditer(r"query wrangler ([^|;)\n]+)", DEPLOY_SCRIPT.read_text()):
        words = shlex.split(m.group(1).replace(">/dev/null", ""))
        cmds.append(["wrangler"] + [w if not w.startswith("$") else "x" for w in words])
    return cmds


@pytest.mark.parametrize("script", ["scripts/deploy.sh", "scripts/setup.sh", "scripts/pyodide/workerd-offline.sh",
                                    ".ci/run"])
def test_shellcheck(pip_tools, script):
    out = subprocess.run([pip_tools["shellcheck"], "--severity=style", str(ROOT / script)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_dry_run_prints_the_whole_first_time_sequence():
    cmds = [" ".join(c) for c in dry_run()]
    expected = [
        "wrangler d1 create gpu-export",
        "sed -i",
        "wrangler r2 bucket create gpu-export-videos",
        "wrangler r2 bucket lifecycle set gpu-export-videos --file .cache/deploy/lifecycle.json --force",
        "wrangler queues create gpu-jobs",
        "wrangler queues create gpu-jobs-dlq",
        "wrangler queues consumer http add gpu-jobs --message-retries 5 --dead-letter-queue gpu-jobs-dlq",
        "wrangler d1 migrations apply gpu-export --remote",
        "wrangler secret put AUTH_SECRET",
        "wrangler secret put WORKER_SECRET",
        "wrangler secret put R2_ACCESS_KEY_ID",
        "wrangler secret put R2_SECRET_ACCESS_KEY",
        "wrangler deploy --var R2_S3_ENDPOINT:https://<account id>.r2.cloudflarestorage.com",
    ]
    assert len(cmds) == len(expected)
    for got, want in zip(cmds, expected):
        assert got.startswith(want), (got, want)
    assert (ROOT / "wrangler.toml").read_text().count("00000000-0000-0000-0000-000000000000") == 1, "dry run edited"


def test_dry_run_takes_the_page_origin_and_retries():
    """Without PAGE_ORIGIN (and with cors.json's example origin) the bucket's CORS rules are left alone."""
    cmds = [" ".join(c) for c in dry_run(PAGE_ORIGIN="https://export.test", MESSAGE_RETRIES="7")]
    assert cmds[3] == "wrangler r2 bucket cors set gpu-export-videos --file .cache/deploy/cors.json --force"
    assert any("--message-retries 7" in c for c in cmds)


def _help(words: list[str]) -> tuple[list[str], str]:
    out = subprocess.run([str(NODE_BIN / "node"), str(WRANGLER), *words, "--help"], cwd=ROOT, env=node_env(),
                         capture_output=True, text=True, timeout=120)
    return words, out.stdout + out.stderr


def test_every_wrangler_command_and_flag_exists_in_the_installed_wrangler():
    assert WRANGLER.exists(), "run make setup"
    version = subprocess.run([str(NODE_BIN / "node"), str(WRANGLER), "--version"], env=node_env(),
                             capture_output=True, text=True).stdout.strip()
    assert version.endswith("4.164.0")
    cmds = [c for c in dry_run() if c[0] == "wrangler"] + queried_commands()
    assert len(cmds) >= 15
    jobs = {}
    for cmd in cmds:
        words = [w for w in cmd[1:] if not w.startswith("-")]
        jobs.setdefault(tuple(words), set()).update(w.split("=")[0] for w in cmd[1:] if w.startswith("--"))
    with ThreadPoolExecutor(4) as pool:
        helps = dict((tuple(w), text) for w, text in pool.map(_help, [list(k) for k in jobs]))
    for words, flags in jobs.items():
        text = helps[words]
        usage = next((line for line in text.splitlines() if line.startswith("wrangler ")), "")
        command = [w for w in usage.split()[1:] if not w.startswith(("<", "["))]
        assert command and list(words[:len(command)]) == command, f"not a wrangler command: {words}\n{text[:300]}"
        for flag in flags:
            assert re.search(rf"(^|\s){re.escape(flag)}\b", text, re.M), f"wrangler {' '.join(command)}: no {flag}"


# ---------------------------------------------------------------- real runs against a fake wrangler


def test_first_run_creates_everything_and_the_second_changes_nothing(deploy_tree):
    first = deploy(deploy_tree, R2_ACCESS_KEY_ID="ak", R2_SECRET_ACCESS_KEY="sk", PAGE_ORIGIN="https://export.test/")
    assert first.returncode == 0, first.stderr
    state = json.loads((deploy_tree / "state.json").read_text())
    db_id = state["d1"]["gpu-export"]
    assert f'database_id = "{db_id}"' in (deploy_tree / "wrangler.toml").read_text()
    cors = state["buckets"]["gpu-export-videos"]["cors"]["rules"][0]
    assert cors["allowed"]["origins"] == ["https://export.test"]
    assert set(cors["allowed"]["methods"]) >= {"PUT", "GET"} and cors["exposeHeaders"] == ["ETag"]
    lifecycle = {r["id"]: r for r in state["buckets"]["gpu-export-videos"]["lifecycle"]["rules"]}
    assert lifecycle["abort-abandoned-multipart-uploads"]["abortMultipartUploadsTransition"]["condition"] == {
        "type": "Age", "maxAge": 2 * 86400}
    assert lifecycle["expire-uploads"]["conditions"]["prefix"] == "videos/raw/"
    assert lifecycle["expire-uploads"]["deleteObjectsTransition"]["condition"]["maxAge"] == 14 * 86400
    assert lifecycle["expire-outputs"]["deleteObjectsTransition"]["condition"]["maxAge"] == 37 * 86400
    assert set(state["queues"]) == {"gpu-jobs", "gpu-jobs-dlq"}
    assert state["queues"]["gpu-jobs"]["consumers"] == [
        {"type": "http_pull", "--message-retries": "5", "--dead-letter-queue": "gpu-jobs-dlq"}]
    assert state["migrations"] == 1
    secrets = state["secrets"]
    assert set(secrets) == {"AUTH_SECRET", "WORKER_SECRET", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"}
    assert re.fullmatch(r"[0-9a-f]{64}", secrets["AUTH_SECRET"]) and secrets["AUTH_SECRET"] != secrets["WORKER_SECRET"]
    assert state["deploys"] == [["--var", "R2_S3_ENDPOINT:https://0123abcd.r2.cloudflarestorage.com"]]
    config = (deploy_tree / ".cache/deploy/gpu-worker-config.env").read_text()
    assert f"GPU_WORKER_QUEUE_ID={state['queues']['gpu-jobs']['id']}" in config
    assert "GPU_WORKER_API_URL=https://export.test" in config
    secret_file = deploy_tree / ".cache/deploy/gpu-worker-secrets.env"
    assert f"GPU_WORKER_SECRET={secrets['WORKER_SECRET']}" in secret_file.read_text()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    for name, value in secrets.items():  # values never on a command line
        assert not any(value in " ".join(call) for call in state["calls"]), name

    calls_before = len(state["calls"])
    second = deploy(deploy_tree)  # no secrets in the environment this time
    assert second.returncode == 0, second.stderr
    again = json.loads((deploy_tree / "state.json").read_text())
    new_calls = [c[:2] for c in again["calls"][calls_before:]]
    creates = [c for c in new_calls if c[1:2] == ["create"] or c[:2] == ["secret", "put"] or c[:2] == ["queues", "consumer"]]
    assert creates == [], f"second run created or replaced: {creates}"
    assert again["secrets"] == secrets and again["d1"] == state["d1"]
    assert again["migrations"] == 2 and len(again["deploys"]) == 2  # redone every time, both idempotent
    assert again["buckets"] == state["buckets"], "CORS rules kept without PAGE_ORIGIN"
    assert "GPU_WORKER_API_URL=https://gpu-export-api.example-team.workers.dev" in \
        (deploy_tree / ".cache/deploy/gpu-worker-config.env").read_text()


def test_refuses_a_database_id_of_another_account(deploy_tree):
    toml = deploy_tree / "wrangler.toml"
    toml.write_text(toml.read_text().replace("00000000-0000-0000-0000-000000000000",
                                             "11111111-1111-1111-1111-111111111111"))
    out = deploy(deploy_tree, R2_ACCESS_KEY_ID="ak", R2_SECRET_ACCESS_KEY="sk")
    assert out.returncode != 0 and "database_id" in out.stderr
    assert json.loads((deploy_tree / "state.json").read_text())["deploys"] == []


def test_first_run_needs_the_r2_token(deploy_tree):
    out = deploy(deploy_tree)
    assert out.returncode != 0 and "R2_ACCESS_KEY_ID" in out.stderr
    assert json.loads((deploy_tree / "state.json").read_text())["deploys"] == []
