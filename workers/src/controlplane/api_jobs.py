"""The users' API: create, read, list, cancel and retry jobs; recovery ("completed while you were
away"); WebSocket tickets and the socket hand-over to the job's Durable Object."""

from __future__ import annotations

import hashlib
import json
import uuid
from urllib.parse import quote

from controlplane import api_webhooks, auth, bindings, identity, job_state, limits, retention
from controlplane.http import Call, HttpError, not_found, validate
from controlplane.job_state import STATUSES
from controlplane.store import MAX_PAGE, Store
from controlplane.uploads import check_video, presign_download
from jobspec import CREATE_JOB, UPLOAD_PREFIX, MarkSeenRequest, QueueMessage, input_keys, spec_and_webhook



async def user_of(call: Call) -> str:
    return await identity.user_of(call)


def store_of(call: Call) -> Store:
    return Store(bindings.D1(call.env.DB))


def job_stub(call: Call, job_id: str):
    return call.env.EXPORT_JOB.getByName(job_id)


async def do_call(call: Call, job_id: str, method: str, *args) -> dict:
    """RPC into the job's DO; a non-2xx reply becomes an HttpError with the DO's reason."""
    result = json.loads(await getattr(job_stub(call, job_id), method)(*args))
    if result["status"] >= 400:
        body = result["body"]
        raise HttpError(result["status"], body.get("error", "error"), body.get("reason", ""))
    return result["body"]


def socket_url(call: Call, user_id: str, job_id: str) -> tuple[str, str]:
    expires = int(call.now + call.settings.ws_ticket_ttl_s)
    ticket = auth.issue_ws_ticket(call.settings.auth_secret, user_id, job_id, expires)
    ws_origin = call.origin.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return f"{ws_origin}/api/jobs/{job_id}/ws?ticket={quote(ticket)}", job_state.iso(expires)


# ------------------------------------------------------------------ auth


async def anonymous_user(call: Call):
    if not call.settings.allow_anonymous:
        raise HttpError(403, "disabled", "anonymous accounts are disabled on this deployment")
    user_id = auth.new_user_id()
    return 201, {"user_id": user_id, "token": auth.issue_user_token(call.settings.auth_secret, user_id)}


# ------------------------------------------------------------------ create


def _request_sha(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


async def _check_inputs(call: Call, user_id: str, spec) -> None:
    own_prefix = f"{UPLOAD_PREFIX}{user_id}/"
    for key in dict.fromkeys(input_keys(spec)):
        size = await bindings.r2_size(call.env.VIDEOS, key) if key.startswith(own_prefix) else None
        if size is None:  # another user's key reads as missing: existence is not leaked
            raise HttpError(404, "input_not_found", f"input video {key} does not exist: upload it first")
        if size == 0:
            raise HttpError(422, "input_empty", f"input video {key} is empty (0 bytes)")
        await check_video(call, key, size)


async def _replay(call: Call, store: Store, user_id: str, key: str, sha: str):
    row = await store.idempotent_job(user_id, key, call.now)
    if row is None:
        return None
    if row["request_sha"] != sha:
        raise HttpError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
    view = await do_call(call, row["job_id"], "snapshot", user_id)
    return await _created_reply(call, user_id, view, replay=True)


async def _created_reply(call: Call, user_id: str, view: dict, replay: bool = False):
    job_id = view["job_id"]
    url, ticket_expires = socket_url(call, user_id, job_id)
    body = {"job_id": job_id, "status": view["status"], "websocket_url": url,
            "websocket_ticket_expires_at": ticket_expires, "job": view,
            "estimated_wait_seconds": await _estimated_wait(call), "idempotent_replay": replay}
    return (200 if replay else 202), body


async def _estimated_wait(call: Call) -> float | None:
    """Jobs waiting x recent time per job / live pods; None until a job has completed."""
    load = await store_of(call).load(call.now, call.settings.policy.lease_timeout_s)
    if load["per_job_s"] is None:
        return None
    return round(load["per_job_s"] * load["pending"] / max(1, load["pods"]), 1)


async def create_job(call: Call):
    user_id = await user_of(call)
    data = call.json()
    request = validate(CREATE_JOB, data)
    spec, webhook_request = spec_and_webhook(request)
    webhook = await api_webhooks.subscription(call, user_id, webhook_request)
    store = store_of(call)
    idem_key = call.header("idempotency-key")
    if idem_key is not None and not 1 <= len(idem_key) <= 200:
        raise HttpError(400, "bad_idempotency_key", "Idempotency-Key must be 1-200 characters")
    sha = _request_sha(data)
    if idem_key and (replayed := await _replay(call, store, user_id, idem_key, sha)):
        return replayed
    await _check_inputs(call, user_id, request)

    job = job_state.new_job(uuid.uuid4().hex, user_id, spec, call.now)
    job.webhook = webhook
    max_active = call.settings.limits.max_active_jobs
    try:
        stored = await store.insert(job, (idem_key, sha) if idem_key else None, max_active)
    except Exception:
        # A concurrent request with the same Idempotency-Key won the insert: answer with its job.
        if idem_key and (replayed := await _replay(call, store, user_id, idem_key, sha)):
            return replayed
        raise
    if not stored:
        raise limits.active_jobs_exceeded(max_active)
    try:
        view = await do_call(call, job.job_id, "init", json.dumps(job.to_dict()))
        message = QueueMessage(job_id=job.job_id, attempt=1).model_dump()
        await bindings.queue_send(call.env.GPU_QUEUE, message)
    except Exception as e:
        await job_stub(call, job.job_id).discard()
        await store.delete(job.job_id)
        raise HttpError(503, "dispatch_failed", f"could not dispatch the job, nothing was created: {e}") from None
    return await _created_reply(call, user_id, view)


# ------------------------------------------------------------------ read, list, act


async def get_job(call: Call):
    user_id = await user_of(call)
    return 200, await do_call(call, call.params["job_id"], "snapshot", user_id)


async def list_jobs(call: Call):
    user_id = await user_of(call)
    statuses = [s for s in (call.query_one("status") or "").split(",") if s]
    if bad := [s for s in statuses if s not in STATUSES]:
        raise HttpError(400, "bad_status", f"unknown status {bad[0]!r}; use one of {', '.join(STATUSES)}")
    try:
        limit = int(call.query_one("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise HttpError(400, "bad_limit", f"limit must be 1..{MAX_PAGE}")
    try:
        jobs, cursor = await store_of(call).page(user_id, statuses, limit, call.query_one("cursor"))
    except ValueError as e:
        raise HttpError(400, "bad_cursor", str(e)) from None
    return 200, {"jobs": [job_state.view(j) for j in jobs], "next_cursor": cursor}


async def _user_action(call: Call, action: str):
    user_id = await user_of(call)
    return 200, await do_call(call, call.params["job_id"], "user_action", action, user_id)


async def cancel_job(call: Call):
    return await _user_action(call, "cancel")


async def retry_job(call: Call):
    return await _user_action(call, "retry")


async def download(call: Call):
    user_id = await user_of(call)
    job = await store_of(call).owned_job(user_id, call.params["job_id"])
    if job is None:
        raise not_found()
    if job.status != "complete" or not job.output_key:
        raise HttpError(409, "not_ready", f"the export is not ready (job is {job.status})")
    retention.check_not_expired(job, call.now)
    url, expires_at = presign_download(call, job.output_key, f"export-{job.job_id}.mp4")
    if call.query_one("redirect") == "1":
        return bindings.redirect(url)
    return 200, {"url": url, "expires_at": expires_at, "size_bytes": job.output_bytes}


# ------------------------------------------------------------------ recovery


async def active_exports(call: Call):
    user_id = await user_of(call)
    jobs = await store_of(call).active(user_id)
    views = [job_state.view(j) for j in jobs]
    return 200, {
        "active": [v for v in views if v["status"] in ("pending", "processing")],
        "finished_while_away": [v for v in views if v["status"] not in ("pending", "processing")],
    }


async def mark_seen(call: Call):
    user_id = await user_of(call)
    req = validate(MarkSeenRequest, call.json())
    return 200, {"marked": await store_of(call).mark_seen(user_id, req.job_ids, call.now)}


# ------------------------------------------------------------------ WebSocket


async def ws_ticket(call: Call):
    user_id = await user_of(call)
    await do_call(call, call.params["job_id"], "snapshot", user_id)  # 404 unless the user's job
    url, expires_at = socket_url(call, user_id, call.params["job_id"])
    return 200, {"websocket_url": url, "expires_at": expires_at}


async def ws_connect(call: Call):
    try:
        ticket = auth.check_ws_ticket(call.settings.auth_secret, call.query_one("ticket"), call.params["job_id"],
                                      call.now)
    except auth.Unauthorized as e:
        raise HttpError(401, "unauthorized", str(e)) from None
    if (call.header("upgrade") or "").lower() != "websocket":
        raise HttpError(426, "upgrade_required", "this endpoint speaks WebSocket only")
    request = bindings.with_headers(call.raw, {"x-user-id": ticket.user_id, "x-ticket-id": ticket.id})
    return await job_stub(call, call.params["job_id"]).fetch(request)
