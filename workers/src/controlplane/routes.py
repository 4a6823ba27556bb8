"""Every HTTP route of the Worker, in one table."""

from __future__ import annotations

import json

from controlplane import api_jobs, api_pods, bindings, uploads
from controlplane.api_jobs import user_of
from controlplane.http import Call, Router
from controlplane.limits import limited
from controlplane.queue_broker import LOCAL_QUEUE_ID
from controlplane.store import Store


def _as_user(handler):
    async def wrapped(call: Call):
        return await handler(call, user_of(call))
    return wrapped


def _client_address(call: Call) -> str:
    return "ip:" + (call.header("cf-connecting-ip") or "unknown")  # set by Cloudflare, not by the client


def _user(call: Call) -> str:
    return "user:" + user_of(call)


async def health(call: Call):
    """Queue backlog (jobs waiting for a pod), jobs by status, live pods, GPU time and its cost."""
    stats = await Store(bindings.D1(call.env.DB)).health(call.now, call.settings.policy.lease_timeout_s)
    if call.settings.local_pull_queue:
        stats["queue"] = json.loads(await call.env.QUEUE_BROKER.getByName(LOCAL_QUEUE_ID).stats())
    hours = stats["gpu_seconds"] / 3600
    return 200, {"ok": True, "queue_backlog": stats["by_status"].get("pending", 0), **stats,
                 "estimated_gpu_cost_usd": round(hours * call.settings.gpu_price_per_hour, 6)}


def build_router() -> Router:
    r = Router()
    r.add("GET", "/health", health)
    r.add("POST", "/api/auth/anonymous", limited("signups", _client_address, api_jobs.anonymous_user))
    r.add("POST", "/api/videos/upload-url", limited("uploads", _user, _as_user(uploads.upload_url)))
    r.add("POST", "/api/videos/multipart", limited("uploads", _user, _as_user(uploads.multipart_create)))
    r.add("POST", "/api/videos/multipart/complete", _as_user(uploads.multipart_complete))
    r.add("POST", "/api/videos/multipart/abort", _as_user(uploads.multipart_abort))
    r.add("POST", "/api/jobs", limited("jobs", _user, api_jobs.create_job))
    r.add("GET", "/api/jobs", api_jobs.list_jobs)
    r.add("GET", "/api/jobs/{job_id}", api_jobs.get_job)
    r.add("POST", "/api/jobs/{job_id}/cancel", api_jobs.cancel_job)
    r.add("POST", "/api/jobs/{job_id}/retry", api_jobs.retry_job)
    r.add("GET", "/api/jobs/{job_id}/download", api_jobs.download)
    r.add("POST", "/api/jobs/{job_id}/ws-ticket", api_jobs.ws_ticket)
    r.add("GET", "/api/jobs/{job_id}/ws", api_jobs.ws_connect)
    r.add("GET", "/api/exports/active", api_jobs.active_exports)
    r.add("POST", "/api/exports/seen", api_jobs.mark_seen)
    r.add("POST", "/api/pod/jobs/{job_id}/{action}", api_pods.pod_action)
    r.add("POST", "/client/v4/accounts/{account_id}/queues/{queue_id}/messages/pull", api_pods.queue_pull)
    r.add("POST", "/client/v4/accounts/{account_id}/queues/{queue_id}/messages/ack", api_pods.queue_ack)
    return r


