"""Every HTTP route of the Worker, in one table."""

from __future__ import annotations

import json

from controlplane import api_jobs, api_pods, api_webhooks, bindings, identity, metrics, openapi, uploads
from controlplane.api_jobs import user_of
from controlplane.http import Call, Router
from controlplane.limits import limited
from controlplane.queue_broker import LOCAL_QUEUE_ID
from controlplane.store import MAX_PAGE, Store
from jobspec import (
    CREATE_JOB,
    POD_REPORTS,
    Aborted,
    Account,
    ActiveExports,
    Answer,
    ClaimGrant,
    CreatedJob,
    DownloadGrant,
    ErrorBody,
    Health,
    JobPage,
    JobView,
    MarkSeenRequest,
    Marked,
    MultipartAbortRequest,
    MultipartCompleteRequest,
    MultipartGrant,
    NewUser,
    PodIdentity,
    PodReply,
    ServiceConfig,
    SocketGrant,
    UploadDone,
    UploadGrant,
    UploadRequest,
    VideoViewRequest,
    WebhookDeliveries,
    WebhookSecret,
)


def _as_user(handler):
    async def wrapped(call: Call):
        return await handler(call, await user_of(call))
    return wrapped


async def _client_address(call: Call) -> str:
    return "ip:" + (call.header("cf-connecting-ip") or "unknown")  # set by Cloudflare, not by the client


async def _user(call: Call) -> str:
    return "user:" + await user_of(call)


async def health(call: Call):
    """Queue backlog (jobs waiting for a pod), jobs by status, live pods, GPU time and its cost."""
    stats = await Store(bindings.D1(call.env.DB)).health(call.now, call.settings.policy.lease_timeout_s)
    if call.settings.local_pull_queue:
        stats["queue"] = json.loads(await call.env.QUEUE_BROKER.getByName(LOCAL_QUEUE_ID).stats())
    hours = stats["gpu_seconds"] / 3600
    return 200, {"ok": True, "queue_backlog": stats["by_status"].get("pending", 0), **stats,
                 "estimated_gpu_cost_usd": round(hours * call.settings.gpu_price_per_hour, 6)}


async def config(call: Call):
    """What a client needs to know about this deployment before it uploads or signs in."""
    s = call.settings
    return 200, {"max_upload_bytes": s.max_upload_bytes, "multipart_threshold_bytes": s.multipart_threshold_bytes,
                 "allow_anonymous": s.allow_anonymous, "signin_url": s.signin_url or None,
                 "embed_origins": list(s.embed_origins), "token_header": s.jwt.header}


async def openapi_document(call: Call):
    """This API's OpenAPI 3.1 document, generated from the route table below and the jobspec models."""
    return 200, openapi.document(ROUTER, call.origin)


def build_router() -> Router:
    """Each route with who may call it (auth), the body it takes, what it answers and a summary: the
    OpenAPI document is generated from this table (controlplane.openapi)."""
    r = Router()
    r.add("GET", "/health", health, auth=None, answers={200: Health})
    r.add("GET", "/metrics", metrics.endpoint, auth="metrics", answers={200: None},
          summary="counters and gauges in Prometheus text format")
    r.add("GET", "/api/config", config, auth=None, answers={200: ServiceConfig})
    r.add("GET", "/api/openapi.json", openapi_document, auth=None, answers={200: Answer})
    r.add("POST", "/api/auth/anonymous", limited("signups", _client_address, api_jobs.anonymous_user), auth=None,
          answers={201: NewUser}, summary="a new anonymous account and its token (local and demo deployments only)")
    r.add("GET", "/api/auth/me", identity.whoami, answers={200: Account},
          summary="the account a credential signs in as")

    r.add("POST", "/api/videos/upload-url", limited("uploads", _user, _as_user(uploads.upload_url)),
          body=UploadRequest, answers={200: UploadGrant},
          summary="a presigned PUT for one video: its type and exact size are signed, so storage refuses others")
    r.add("POST", "/api/videos/multipart", limited("uploads", _user, _as_user(uploads.multipart_create)),
          body=UploadRequest, answers={200: MultipartGrant},
          summary="a multipart upload, one presigned PUT per part (for files over multipart_threshold_bytes)")
    r.add("POST", "/api/videos/multipart/complete", _as_user(uploads.multipart_complete),
          body=MultipartCompleteRequest, answers={200: UploadDone},
          summary="complete a multipart upload with every part's ETag (a short result is discarded)")
    r.add("POST", "/api/videos/multipart/abort", _as_user(uploads.multipart_abort), body=MultipartAbortRequest,
          answers={200: Aborted}, summary="abort a multipart upload")
    r.add("POST", "/api/videos/view-url", _as_user(uploads.view_url), body=VideoViewRequest,
          answers={200: DownloadGrant}, summary="a presigned GET of one of your uploads, to play it (byte ranges)")

    r.add("POST", "/api/jobs", limited("jobs", _user, api_jobs.create_job), body=CREATE_JOB,
          answers={202: CreatedJob, 200: CreatedJob},
          summary="submit an export job (with an Idempotency-Key header, a retry returns the same job)")
    r.add("GET", "/api/jobs", api_jobs.list_jobs, answers={200: JobPage},
          query={"status": "only jobs with these statuses, comma-separated",
                 "limit": f"page size, 1..{MAX_PAGE} (default 20)", "cursor": "next_cursor of the previous page"},
          summary="your jobs, newest first, a page at a time")
    r.add("GET", "/api/jobs/{job_id}", api_jobs.get_job, answers={200: JobView}, summary="one job")
    r.add("POST", "/api/jobs/{job_id}/cancel", api_jobs.cancel_job, answers={200: JobView},
          summary="cancel a job (its pod stops at its next report)")
    r.add("POST", "/api/jobs/{job_id}/retry", api_jobs.retry_job, answers={200: JobView},
          summary="retry a failed job (from its last checkpoint)")
    r.add("GET", "/api/jobs/{job_id}/download", api_jobs.download, answers={200: DownloadGrant, 302: None},
          query={"redirect": "1: answer with a redirect to the file instead of its URL"},
          summary="a presigned GET of a finished export (410 once it has expired)")
    r.add("GET", "/api/jobs/{job_id}/webhooks", api_webhooks.deliveries, answers={200: WebhookDeliveries},
          summary="the job's webhook deliveries and every attempt")
    r.add("POST", "/api/webhooks/secret", api_webhooks.rotate_secret, answers={201: WebhookSecret},
          summary="a new webhook signing secret, shown once (the previous one keeps signing for 24 h)")
    r.add("POST", "/api/jobs/{job_id}/ws-ticket", api_jobs.ws_ticket, answers={200: SocketGrant},
          summary="a short-lived ticket for the job's WebSocket")
    r.add("GET", "/api/jobs/{job_id}/ws", api_jobs.ws_connect, auth="ticket", answers={101: None, 426: ErrorBody},
          query={"ticket": "from POST /api/jobs/{job_id}/ws-ticket"},
          summary="the job's live events (WebSocket): a snapshot, then one JobEvent per change")
    r.add("GET", "/api/exports/active", api_jobs.active_exports, answers={200: ActiveExports},
          summary="running jobs, and finished ones you have not seen (completed while you were away)")
    r.add("POST", "/api/exports/seen", api_jobs.mark_seen, body=MarkSeenRequest, answers={200: Marked},
          summary="mark finished jobs seen")

    r.add("POST", "/api/pod/jobs/{job_id}/claim", api_pods.reporter("claim"), auth="pod", body=PodIdentity,
          answers={200: ClaimGrant}, summary="a GPU pod takes a job: the answer is its lease")
    for action, model in POD_REPORTS.items():
        r.add("POST", f"/api/pod/jobs/{{job_id}}/{action}", api_pods.reporter(action), auth="pod", body=model,
              answers={200: PodReply}, summary=f"a GPU pod's {action} report, under its lease")
    queue = "/client/v4/accounts/{account_id}/queues/{queue_id}/messages"
    r.add("POST", f"{queue}/pull", api_pods.queue_pull, auth="queue", answers={200: Answer},
          summary="pull queue messages (the Cloudflare Queues HTTP pull contract; local development only)")
    r.add("POST", f"{queue}/ack", api_pods.queue_ack, auth="queue", answers={200: Answer},
          summary="acknowledge or retry pulled messages (local development only)")
    return r


ROUTER = build_router()
