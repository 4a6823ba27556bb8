"""Webhooks on the real stack (production configuration plus the local-only WEBHOOK_ALLOW_LOOPBACK):
signed per Standard Webhooks (verified with the `standardwebhooks` package), retried with backoff and the
same webhook-id by the job's Durable Object, through a wrangler dev restart, every attempt listed, a slow
receiver never holding up the job, refused URLs a 422."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from standardwebhooks import Webhook

from gpu_export import Client, WebhookVerificationError, verify_webhook
from jobspec import WebhookDelivery
from tests.api_helpers import claim, overlay_job, refusal, video_bytes
from tests.polling import wait_until
from tests.webhook_receiver import Receiver

INTERRUPTED = "no answer recorded: in flight, or the Worker stopped during this attempt"


@pytest.fixture
def user(prod_stack, identity_provider, client_for) -> Client:
    return client_for(prod_stack, identity_provider.token(f"hooks-{secrets.token_hex(4)}", "HS256"))


def new_secret(user: Client) -> str:
    secret = user.new_webhook_secret().secret
    assert secret.startswith("whsec_")
    return secret


def create_with_hook(user: Client, url: str, events=None) -> str:
    key = user.upload(video_bytes(b"v" * 400))
    return user.create(overlay_job(key), webhook_url=url, webhook_events=events).job_id


def complete(stack, job_id: str) -> None:
    control, grant = claim(stack, job_id, "hook-pod")
    control.report(job_id, "complete", grant.lease_id, output_key=grant.output_key, frames=10, size_bytes=100)


def deliveries(user: Client, job_id: str) -> list[WebhookDelivery]:
    return user.webhook_deliveries(job_id).deliveries


def answered_errors(user: Client, job_id: str) -> list[str | None]:
    """The errors of the job's delivery attempts that have an answer (or gave up waiting for one)."""
    return [a.error for x in deliveries(user, job_id) for a in x.attempts if a.error != INTERRUPTED]


def test_completed_job_is_delivered_signed(prod_stack, user):
    secret = new_secret(user)
    with Receiver() as receiver:
        job_id = create_with_hook(user, receiver.url)
        sent = time.time()
        complete(prod_stack, job_id)
        [got] = receiver.wait_for(1, 15)
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "job.completed" and payload["data"]["job_id"] == job_id
    assert payload["data"]["job"]["status"] == "complete"
    delivery = verify_webhook(secret, got.body, got.headers)  # the client's check: the WebSocket's event
    assert delivery.data.type == "complete" and delivery.data.job.status == "complete"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, got.body.replace(job_id, "x" * len(job_id)), got.headers)
    assert got.headers["webhook-id"].startswith("msg_") and got.at - sent < 10
    [d] = deliveries(user, job_id)
    assert d.status == "delivered" and d.webhook_id == got.headers["webhook-id"]
    assert [a.status_code for a in d.attempts] == [204]


def test_a_failing_receiver_is_retried_with_backoff_and_the_same_id(prod_stack, user):
    secret = new_secret(user)
    with Receiver(fail_first=3) as receiver:
        job_id = create_with_hook(user, receiver.url)
        complete(prod_stack, job_id)
        got = receiver.wait_for(4, 30)
    assert len({r.headers["webhook-id"] for r in got}) == 1, "one webhook-id for every attempt"
    assert len({r.body for r in got}) == 1
    for r in got:
        Webhook(secret).verify(r.body, r.headers)
    gaps = [b.at - a.at for a, b in zip(got, got[1:])]
    assert gaps[0] >= 0.8 and gaps[1] >= 1.6 and gaps[2] >= 3.2, gaps  # WEBHOOK_RETRY_BASE_S=1: 1, 2, 4 s
    # The last answer is recorded after the receiver has sent it.
    wait_until(lambda: deliveries(user, job_id)[-1].status == "delivered", 10, "the delivery recorded as delivered")
    [d] = deliveries(user, job_id)
    assert d.status == "delivered"
    assert [(a.n, a.status_code) for a in d.attempts] == [(1, 500), (2, 500), (3, 500), (4, 204)]
    assert all(a.error == "HTTP 500" for a in d.attempts[:3])


def test_retries_go_on_after_a_wrangler_dev_restart(prod_stack, identity_provider, client_for):
    user = client_for(prod_stack, identity_provider.token("hooks-restart", "HS256"))
    secret = new_secret(user)
    with Receiver(fail_first=2) as receiver:
        job_id = create_with_hook(user, receiver.url, ["failed"])
        control, grant = claim(prod_stack, job_id, "hook-pod")
        control.report(job_id, "fail", grant.lease_id, reason="bad input", retryable=False)
        receiver.wait_for(1, 15)
        prod_stack.restart()  # the second attempt is due 1 s after the first: it comes after the restart
        got = receiver.wait_for(3, 60)
    assert len({r.headers["webhook-id"] for r in got}) == 1
    assert json.loads(got[-1].body)["type"] == "job.failed"
    Webhook(secret).verify(got[-1].body, got[-1].headers)
    user = client_for(prod_stack, identity_provider.token("hooks-restart", "HS256"))  # the JWKS cache restarted too
    [d] = deliveries(user, job_id)
    # An attempt the restart cut short is listed as such (recorded before it was sent); its answer, if
    # the receiver sent one, was not seen.
    statuses = [a.status_code for a in d.attempts]
    answered = [s for s in statuses if s is not None]
    assert d.status == "delivered" and statuses[-1] == 204, d
    assert answered == [500, 500, 204] or (answered == [500, 204] and statuses.count(None) == 1), statuses
    assert all(a.error == INTERRUPTED for a in d.attempts if a.status_code is None)


def test_a_slow_receiver_does_not_hold_up_the_job(prod_stack, user):
    new_secret(user)
    with Receiver(delay_s=5) as receiver:  # longer than WEBHOOK_TIMEOUT_S=2
        job_id = create_with_hook(user, receiver.url, ["progress", "completed"])
        control, grant = claim(prod_stack, job_id, "hook-pod")
        took = []
        for frame in (10, 20, 30, 40):
            started = time.monotonic()
            control.report(job_id, "progress", grant.lease_id, frame=frame, total_frames=50)
            took.append(time.monotonic() - started)
            receiver.wait_for(1, 10)  # the rest are reported while the receiver holds the first delivery
        started = time.monotonic()
        control.report(job_id, "complete", grant.lease_id, output_key=grant.output_key, frames=50, size_bytes=100)
        took.append(time.monotonic() - started)
        assert max(took) < 1.5, took
        assert user.get(job_id).status == "complete"
        received = len(receiver.wait_for(2, 20))
        # Each attempt the receiver has is answered, once the sender's timeout has run out.
        wait_until(lambda: len(answered_errors(user, job_id)) >= received, 15, "the attempts' timeouts recorded")
    errors = [a.error for x in deliveries(user, job_id) for a in x.attempts]
    answered = [e for e in errors if e != INTERRUPTED]  # a retry may be in flight now
    assert answered and all(e and "TimeoutError" in e for e in answered), errors


def test_rotation_signs_with_both_secrets_for_the_overlap(prod_stack, user):
    old = new_secret(user)
    rotated = user.new_webhook_secret()
    new, until = rotated.secret, rotated.previous_secret_valid_until
    assert new != old and until is not None
    with Receiver() as receiver:
        complete(prod_stack, create_with_hook(user, receiver.url))
        [got] = receiver.wait_for(1, 15)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(got.body, got.headers)


@pytest.mark.parametrize("url, reason", [
    ("http://hooks.example.com/x", "https"),
    ("https://10.0.0.8/hook", "non-public"),
    ("https://169.254.169.254/latest/meta-data", "non-public"),
    ("https://[::1]/hook", "non-public"),
    ("https://localhost/hook", "not a public name"),
    ("https://metadata.google.internal/", "not a public name"),
    ("http://2130706433/hook", "https"),
    ("https://0x7f.1/hook", "non-public"),
])
def test_refused_urls_are_a_422_and_create_nothing(prod_stack, user, url, reason):
    new_secret(user)
    key = user.upload(video_bytes(b"v" * 400))
    refused = refusal(user.create, overlay_job(key), webhook_url=url)
    assert refused.status == 422 and refused.error == "webhook_refused", refused
    assert reason in refused.reason
    assert user.list().jobs == []


def test_a_webhook_needs_a_secret_first(prod_stack, user):
    key = user.upload(video_bytes(b"v" * 400))
    refused = refusal(user.create, overlay_job(key), webhook_url="https://h.example.com/")
    assert refused.status == 422 and refused.error == "webhook_secret_missing"
    assert "POST /api/webhooks/secret" in refused.reason
