"""webhooks.py: which URLs may receive webhooks, the Standard Webhooks signature (checked with the
independent `standardwebhooks` package), secret rotation and the retry schedule."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from controlplane import webhooks
from controlplane.webhooks import WebhookPolicy
from jobspec import CREATE_JOB, JOB_SPEC, WebhookRequest, spec_and_webhook

PROD = WebhookPolicy()
LOCAL = WebhookPolicy(allow_loopback=True)


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/export", "https://hooks.example.com:8443/x?y=1", "https://93.184.216.34/hook",
    "https://[2606:4700:4700::1111]/hook",
])
def test_public_https_urls_are_accepted(url):
    assert webhooks.check_url(url, PROD) == url


@pytest.mark.parametrize("url, reason", [
    ("http://hooks.example.com/", "https"),
    ("ftp://hooks.example.com/", "https"),
    ("https://user:pw@hooks.example.com/", "credentials"),
    ("https://127.0.0.1/", "non-public"),
    ("http://127.0.0.1:8000/", "https"),  # only with the local-only variable
    ("https://10.1.2.3/", "non-public"),
    ("https://172.16.0.1/", "non-public"),
    ("https://192.168.1.1/", "non-public"),
    ("https://169.254.169.254/latest/meta-data/", "non-public"),  # cloud metadata
    ("https://100.100.100.200/", "non-public"),  # carrier-grade NAT (Alibaba metadata)
    ("https://0.0.0.0/", "non-public"),
    ("https://[::1]/", "non-public"),
    ("https://[fe80::1]/", "non-public"),
    ("https://[fd00::1]/", "non-public"),
    ("https://[::ffff:127.0.0.1]/", "non-public"),
    ("https://[::ffff:169.254.169.254]/", "non-public"),
    ("https://2130706433/", "non-public"),  # 127.0.0.1 as fetch() reads it
    ("https://0x7f.1/", "non-public"),
    ("https://017700000001/", "non-public"),
    ("https://127.1/", "non-public"),
    ("https://localhost/", "not a public name"),
    ("https://api.localhost/", "not a public name"),
    ("https://metadata.google.internal/", "not a public name"),
    ("https://printer.local/", "not a public name"),
    ("https://intranet/", "not a public name"),
    ("https://%31%32%37.0.0.1/", "neither a name nor an IPv4|not a valid host"),
    ("https://999.1.1.1/", "neither a name nor an IPv4"),
    ("https:///path", "no host"),
    ("not a url", "https"),
])
def test_refused_urls_say_why(url, reason):
    with pytest.raises(ValueError, match=reason):
        webhooks.check_url(url, PROD)


def test_the_local_variable_allows_only_127_0_0_1():
    assert webhooks.check_url("http://127.0.0.1:9000/hook", LOCAL)
    for url in ("http://localhost:9000/", "http://2130706433/", "http://10.0.0.1/", "http://[::1]/"):
        with pytest.raises(ValueError):
            webhooks.check_url(url, LOCAL)


def test_subscription_defaults_and_errors():
    req = WebhookRequest(webhook_url="https://h.example.com/")
    assert webhooks.subscription(req, PROD) == {"url": "https://h.example.com/",
                                                "events": ["cancelled", "completed", "failed"]}
    assert webhooks.subscription(WebhookRequest(), PROD) is None
    with pytest.raises(ValueError, match="needs a webhook_url"):
        webhooks.subscription(WebhookRequest(webhook_events=["progress"]), PROD)
    key = "videos/raw/u/x/clip.mp4"
    request = CREATE_JOB.validate_python({"type": "overlay", "input_video_key": key, "webhook_url": "u",
                                          "webhook_events": ["failed"], "params": {"highlight_regions": [
                                              {"keyframes": [{"t": 0, "x": 0.5, "y": 0.5, "rx": 0.1, "ry": 0.1}]}]}})
    spec, hook = spec_and_webhook(request)
    assert "webhook_url" not in spec and JOB_SPEC.validate_python(spec).input_video_key == key
    assert hook == WebhookRequest(webhook_url="u", webhook_events=["failed"])


def test_signatures_verify_with_the_standardwebhooks_package():
    secret = webhooks.derive_secret("auth", "usr_1", "salt-1")
    body = json.dumps({"type": "job.completed", "data": {"job_id": "j"}})
    now = int(time.time())
    headers = webhooks.headers([secret], "msg_1", now, body)
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("j", "k"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.derive_secret("auth", "usr_2", "salt-1")).verify(body, headers)


def test_during_rotation_both_secrets_sign():
    old, new = (webhooks.derive_secret("auth", "usr_1", s) for s in ("salt-1", "salt-2"))
    row = {"salt": "salt-2", "previous_salt": "salt-1", "previous_until": 1000.0}
    assert webhooks.active_salts(row, 999.0) == ["salt-2", "salt-1"]
    assert webhooks.active_salts(row, 1001.0) == ["salt-2"]
    body, now = "{}", int(time.time())
    headers = webhooks.headers([new, old], "msg_1", now, body)
    for secret in (old, new):
        Webhook(secret).verify(body, headers)
    only_new = webhooks.headers([new], "msg_1", now, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, only_new)


def test_retries_back_off_exponentially_and_stop_after_a_day():
    p = WebhookPolicy(retry_base_s=5, retry_max_s=6 * 3600, give_up_after_s=24 * 3600)
    now, attempts, gaps = 0.0, 0, []
    while True:
        attempts += 1
        at = webhooks.next_attempt_at(0.0, attempts, now, p)
        if at is None:
            break
        gaps.append(at - now)
        now = at
    assert gaps[:4] == [5, 10, 20, 40] and max(gaps) == 6 * 3600
    assert now <= 24 * 3600 and now + min(5 * 2 ** attempts, 6 * 3600) > 24 * 3600
    assert 15 <= attempts <= 20
