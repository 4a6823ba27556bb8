"""Receiving the service's webhooks: check a delivery's signature (Standard Webhooks, with the
`standardwebhooks` package) and read it as the same JobEvent the WebSocket sends."""

from __future__ import annotations

from typing import Mapping, Union

from standardwebhooks import Webhook, WebhookVerificationError

from jobspec import WebhookPayload

__all__ = ["verify_webhook", "WebhookVerificationError"]


def verify_webhook(secret: str, body: Union[str, bytes], headers: Mapping[str, str]) -> WebhookPayload:
    """The delivery, if `secret` (whsec_..., from POST /api/webhooks/secret) signed it within the last
    five minutes; else WebhookVerificationError. Deduplicate on headers["webhook-id"]: retries repeat it."""
    text = body.decode() if isinstance(body, bytes) else body
    Webhook(secret).verify(text, {k.lower(): v for k, v in headers.items()})
    return WebhookPayload.model_validate_json(text)
