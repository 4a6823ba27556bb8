"""The GPU pods' API: claim a job, then report on it under the lease the claim granted.

Every request carries an HMAC signature made with WORKER_SECRET (jobspec.pod_signature); the job's
Durable Object refuses a nonce it has already seen, so a captured request cannot be replayed.
Also here, for local dev only: the Cloudflare Queues HTTP pull/ack endpoints (see queue_broker).
"""

from __future__ import annotations

import json

from controlplane import auth
from controlplane.api_jobs import job_stub
from controlplane.http import Call, HttpError
from jobspec import SIGNATURE_HEADER


def _verified_nonce(call: Call) -> str:
    try:
        return auth.check_pod_signature(call.settings.worker_secret, call.header(SIGNATURE_HEADER),
                                        call.method, call.path, call.body.encode(), call.now)
    except auth.Unauthorized as e:
        raise HttpError(401, "unauthorized", str(e)) from None


def reporter(action: str):
    """The handler of one pod action: signed here; validated and applied by the job's Durable Object
    (malformed JSON is refused first, as a 400)."""
    async def report(call: Call):
        nonce = _verified_nonce(call)
        call.json()
        result = json.loads(await job_stub(call, call.params["job_id"]).report(action, call.body, nonce))
        return result["status"], result["body"]
    return report


# ------------------------------------------------------------------ local Queues pull contract


def _check_pull_token(call: Call) -> None:
    if not call.settings.local_pull_queue:
        raise HttpError(404, "not_found", "the local pull endpoint is disabled (use the Cloudflare API)")
    given = call.bearer()
    if not call.settings.pull_token or not given or not auth.same(given, call.settings.pull_token):
        raise HttpError(401, "unauthorized", "invalid queue API token")


def _broker(call: Call):
    return call.env.QUEUE_BROKER.getByName(call.params["queue_id"])


def _cf_envelope(result) -> dict:
    return {"success": True, "errors": [], "messages": [], "result": result}


async def queue_pull(call: Call):
    _check_pull_token(call)
    body = call.json() if call.body.strip() else {}
    batch = body.get("batch_size", 5)
    timeout_ms = body.get("visibility_timeout_ms", body.get("visibility_timeout", 30000))
    if not (isinstance(batch, int) and 1 <= batch <= 100):
        raise HttpError(400, "bad_request", "batch_size must be an integer 1..100")
    if not (isinstance(timeout_ms, int) and 1 <= timeout_ms <= 12 * 3600 * 1000):
        raise HttpError(400, "bad_request", "visibility_timeout_ms must be an integer 1..43200000")
    broker = _broker(call)
    messages = json.loads(await broker.pull(batch, timeout_ms))
    backlog = json.loads(await broker.stats())["backlog"]
    return 200, _cf_envelope({"messages": messages, "message_backlog_count": backlog})


async def queue_ack(call: Call):
    _check_pull_token(call)
    body = call.json()
    acks, retries = body.get("acks", []), body.get("retries", [])
    if not all(isinstance(x, dict) and isinstance(x.get("lease_id"), str) for x in acks + retries):
        raise HttpError(400, "bad_request", "acks and retries must be lists of {lease_id}")
    return 200, _cf_envelope(json.loads(await _broker(call).ack(json.dumps(acks), json.dumps(retries))))
