"""A real `wrangler dev` for the security suite: short-lived presigned URLs and WebSocket tickets (so
expiry is observed, not assumed), a small upload cap, short leases. Users are gpu_export Clients."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from controlplane import auth
from gpu_export import Client
from gpu_worker.control import ControlPlane
from gpu_worker.queue_client import QueueClient
from gpu_worker.storage import R2
from scripts.gpu_worker_proc import queue_client, r2_config
from jobspec import SIGNATURE_HEADER, ClaimGrant, format_signature_header, pod_signature
from scripts.localstack import LocalStack
from tests.api_helpers import claim, overlay_job, video_bytes
from tests.polling import wait_until

TTL_S = 10  # presigned URLs and socket tickets: long enough to use at once, short enough to outlive
STACK_VARS = {"LEASE_TIMEOUT_S": "3", "HEARTBEAT_INTERVAL_S": "1", "MAX_ATTEMPTS": "3", "REQUEUE_DELAY_S": "0",
              "WS_TICKET_TTL_S": str(TTL_S), "PRESIGN_TTL_S": str(TTL_S), "MAX_UPLOAD_BYTES": str(8 << 20),
              # the fuzzer's one user sends hundreds of requests; test_rate_limits has a stack with tight limits
              "RATE_JOBS_PER_USER": "1000/60", "RATE_UPLOADS_PER_USER": "1000/60", "MAX_ACTIVE_JOBS_PER_USER": "1000"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with LocalStack(persist_dir=tmp_path_factory.mktemp("security-stack"), vars=dict(STACK_VARS)) as s:
        yield s


def user_token(stack) -> str:
    """A new user's token: the suite makes hundreds of users, and sign-ups are rate-limited per address
    (test_rate_limits covers them)."""
    return auth.issue_user_token(stack.vars["AUTH_SECRET"], auth.new_user_id())


@pytest.fixture
def new_user(stack, client_for):
    """Makes users of the stack (Clients, each with a token of its own)."""
    return lambda: client_for(stack, user_token(stack))


@pytest.fixture
def alice(new_user) -> Client:
    return new_user()


@pytest.fixture
def bob(new_user) -> Client:
    return new_user()


@pytest.fixture(scope="session")
def r2(stack) -> R2:
    return R2(r2_config(stack))


def r2_keys(r2: R2) -> set[str]:
    return set(r2.keys(""))


@pytest.fixture(scope="session")
def queue(stack) -> QueueClient:
    return queue_client(stack)


def leave_only(queue: QueueClient, job_ids, timeout: float = 60) -> None:
    """Ack every queued message but those of job_ids (other tests' jobs stay pending, unclaimed) once each of
    job_ids has one: a GPU worker started now takes only these jobs. Ours are held until all are seen, then
    released together: releasing each at once had it pulled (a delivery counted) again on every pass, and
    under load that used up its retries."""
    wanted, held = set(job_ids), {}  # job id -> lease id
    deadline = time.monotonic() + timeout
    while set(held) != wanted:
        assert time.monotonic() < deadline, f"messages seen for {set(held)}"
        batch = queue.pull(batch_size=100, visibility_timeout_ms=timeout * 1000)
        mine = [m for m in batch if m.body.get("job_id") in wanted]
        held.update({m.body["job_id"]: m.lease_id for m in mine})
        queue.ack([m.lease_id for m in batch if m not in mine], [])
        if not batch:
            time.sleep(0.5)
    queue.ack([], [(lease_id, 0) for lease_id in held.values()])


def claimed_job(api: Client, stack, pod_name: str = "pod-a") -> tuple[str, ControlPlane, ClaimGrant]:
    """A new job of `api`'s, claimed by a pod (straight from the pod API; its queue message stays)."""
    job_id = api.create(overlay_job(api.upload(video_bytes(b"v" * 400)))).job_id
    control, grant = claim(stack, job_id, pod_name)
    return job_id, control, grant


def claim_after_expiry(control: ControlPlane, job_id: str) -> ClaimGrant:
    """The job claimed by `control` once the lease another pod holds on it has expired (until then each
    claim is refused with a 409)."""
    lease_timeout_s = float(STACK_VARS["LEASE_TIMEOUT_S"])

    def claimed() -> ClaimGrant | None:
        grant = control.claim(job_id)
        if isinstance(grant, ClaimGrant):
            return grant
        assert grant.status == 409, grant
        return None

    return wait_until(claimed, 3 * lease_timeout_s + 10, f"job {job_id} claimed again by {control.pod_id}",
                      interval=lease_timeout_s / 3)


def completed_job(api: Client, stack, r2: R2, output: bytes = b"rendered" * 100) -> str:
    """A job of `api`'s, complete, with its output stored where the pod stores it."""
    job_id, control, grant = claimed_job(api, stack)
    r2.write(grant.output_key, output, "video/mp4")
    control.report(job_id, "complete", grant.lease_id, output_key=grant.output_key, frames=10,
                   size_bytes=len(output))
    return job_id


def signed_post(stack, path: str, body: bytes, *, secret: str | None = None, ts: int | None = None,
                nonce: str = "n0nce-0123456789", sign_path: str | None = None, sign_body: bytes | None = None,
                sign_method: str = "POST") -> httpx.Response:
    """A pod API request signed by hand, each part of the signature overridable."""
    ts = int(time.time()) if ts is None else ts
    sig = pod_signature(stack.vars["WORKER_SECRET"] if secret is None else secret, sign_method,
                        sign_path or path, ts, nonce, body if sign_body is None else sign_body)
    return httpx.post(stack.url + path, content=body, timeout=30,
                      headers={SIGNATURE_HEADER: format_signature_header(ts, nonce, sig)})


def is_error(r: httpx.Response, status: int, code: str | None = None) -> bool:
    """A refusal as the API promises it: this status and a JSON {"error", "reason"} body."""
    try:
        body = r.json()
    except json.JSONDecodeError:
        return False
    return (r.status_code == status and isinstance(body.get("error"), str) and isinstance(body.get("reason"), str)
            and (code is None or body["error"] == code))
