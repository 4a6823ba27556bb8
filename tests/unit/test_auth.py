import asyncio
from types import SimpleNamespace

import pytest

from controlplane import auth
from jobspec import format_signature_header, pod_signature


def test_user_tokens_verify_and_forgeries_fail():
    token = auth.issue_user_token("s", "usr_1")
    assert auth.user_from_token("s", token) == "usr_1"
    for bad in ("", "x", "u1.usr_2." + token.split(".")[2], f"{token}x", f"Bearer {token}"):
        with pytest.raises(auth.Unauthorized):
            auth.user_from_token("s", bad)
    with pytest.raises(auth.Unauthorized):
        auth.user_from_token("other-secret", token)


def test_ws_tickets_expire_and_are_bound_to_a_job():
    ticket = auth.issue_ws_ticket("s", "usr_1", "job1", expires_at=1000)
    checked = auth.check_ws_ticket("s", ticket, "job1", now=999)
    assert checked.user_id == "usr_1" and checked.expires_at == 1000
    assert auth.issue_ws_ticket("s", "usr_1", "job1", expires_at=1000) != ticket  # each ticket has its own id
    for job, now in (("job2", 999), ("job1", 1001)):
        with pytest.raises(auth.Unauthorized):
            auth.check_ws_ticket("s", ticket, job, now)


def test_pod_signatures_cover_path_body_and_time():
    body = b'{"lease_id": "x"}'
    header = format_signature_header(100, "nonce-123", pod_signature("k", "POST", "/p", 100, "nonce-123", body))
    assert auth.check_pod_signature("k", header, "POST", "/p", body, now=110) == "nonce-123"
    for args in (("k", header, "POST", "/q", body, 110), ("k", header, "POST", "/p", body + b" ", 110),
                 ("k", header, "POST", "/p", body, 1000), ("j", header, "POST", "/p", body, 110),
                 ("k", None, "POST", "/p", body, 110)):
        with pytest.raises(auth.Unauthorized):
            auth.check_pod_signature(*args)


def test_credentials_with_non_ascii_characters_are_refused_not_crashed():
    token = auth.issue_user_token("s", "usr_1")
    ticket = auth.issue_ws_ticket("s", "usr_1", "job1", expires_at=1000)
    for bad in ("\u00e9", "\udcff", "\u00b2", "\u0663"):
        with pytest.raises(auth.Unauthorized):
            auth.user_from_token("s", f"{token[:-1]}{bad}")
        with pytest.raises(auth.Unauthorized):
            auth.check_ws_ticket("s", ticket[:-1] + bad, "job1", now=999)
        with pytest.raises(auth.Unauthorized):
            auth.check_ws_ticket("s", ticket.replace(".1000.", f".100{bad}."), "job1", now=999)
        with pytest.raises(auth.Unauthorized):
            auth.check_pod_signature("s", format_signature_header(1000, "nonce-0123", "ab" + bad), "POST", "/p", b"",
                                     now=1000)
    assert not auth.same("\u00e9", "e") and auth.same("abc", "abc")


def test_a_request_is_verified_once_however_often_its_caller_is_asked_for(monkeypatch):
    """A rate-limited route asks who calls (for the limit's key), then its handler asks again."""
    from controlplane import identity
    from controlplane.http import Call
    from controlplane.settings import Settings

    verified = []
    monkeypatch.setattr(auth, "user_from_token", lambda secret, token: verified.append(token) or "usr_1")
    settings = Settings.from_env(SimpleNamespace(AUTH_SECRET="s", ALLOW_ANONYMOUS="true"))
    call = Call(env=None, settings=settings, method="GET", path="/api/jobs", query={},
                headers={"authorization": "Bearer u1.usr_1.mac"}, body="", origin="", now=0.0)
    assert asyncio.run(identity.user_of(call)) == asyncio.run(identity.user_of(call)) == "usr_1"
    assert verified == ["u1.usr_1.mac"] and call.user_id == "usr_1"
