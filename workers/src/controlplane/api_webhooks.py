"""The users' webhook API: the signing secret (created or rotated on request, shown once), a job's
subscription when it is created, and its deliveries (GET /api/jobs/{id}/webhooks)."""

from __future__ import annotations

from controlplane import api_jobs, bindings, identity, job_state, webhook_secrets, webhooks
from controlplane.http import Call, HttpError
from jobspec import WebhookRequest


async def rotate_secret(call: Call):
    """POST /api/webhooks/secret: a new secret; the previous one keeps signing for the overlap (24 h)."""
    user_id = await identity.user_of(call)
    d1 = bindings.D1(call.env.DB)
    salt, previous_until = await webhook_secrets.rotate(d1, user_id, call.now, call.settings.webhooks.rotation_overlap_s)
    return 201, {"secret": webhooks.derive_secret(call.settings.auth_secret, user_id, salt),
                 "previous_secret_valid_until": job_state.iso(previous_until),
                 "note": "shown once: store it now (a new POST rotates it)"}


async def subscription(call: Call, user_id: str, req: WebhookRequest) -> dict | None:
    """The webhook part of a job (None without one); 422 for a refused URL or a missing secret."""
    try:
        hook = webhooks.subscription(req, call.settings.webhooks)
    except ValueError as e:
        raise HttpError(422, "webhook_refused", str(e)) from None
    if hook and await webhook_secrets.row(bindings.D1(call.env.DB), user_id) is None:
        raise HttpError(422, "webhook_secret_missing",
                        "create your webhook signing secret first: POST /api/webhooks/secret")
    return hook


async def deliveries(call: Call):
    user_id = await identity.user_of(call)
    return 200, await api_jobs.do_call(call, call.params["job_id"], "webhooks", user_id)
