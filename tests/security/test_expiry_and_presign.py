"""Short-lived credentials expire, and storage (R2's S3 API) enforces what the Worker signed: expiry,
the exact object, content type and length. (tests/stack covers: another content type, a shorter
body, a tampered X-Amz-Expires, a declared size over the cap.)"""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from controlplane import auth

from .conftest import STACK_VARS, TTL_S, completed_job, is_error, r2_keys
from tests.api_helpers import overlay_job, refusal, video_bytes

MAX_UPLOAD = int(STACK_VARS["MAX_UPLOAD_BYTES"])


def expiry(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_tickets_and_presigned_urls_expire(alice, stack, r2):
    job_id = completed_job(alice, stack, r2)
    issued = time.time()
    put = alice.upload_grant("a.mp4", 100)
    download = alice.download_url(job_id)
    socket = alice.socket_url(job_id)
    for grant in (put, download, socket):
        assert abs(expiry(grant.expires_at) - (issued + TTL_S)) < 5, grant.expires_at
    with ws_client.connect(socket.websocket_url, open_timeout=20) as sock:  # valid now
        assert '"snapshot"' in sock.recv(timeout=20)
    assert httpx.get(download.url).status_code == 200

    time.sleep(max(expiry(g.expires_at) for g in (put, download, socket)) - time.time() + 1.5)

    with pytest.raises(InvalidStatus) as refused:
        ws_client.connect(socket.websocket_url, open_timeout=20)
    assert refused.value.response.status_code == 401
    assert httpx.put(put.upload_url, content=b"x" * 100, headers=put.headers).status_code == 403
    assert httpx.get(download.url).status_code == 403
    assert put.video_key not in r2_keys(r2)


def test_a_minted_expired_ticket_is_refused(alice, stack):
    job_id = alice.create(overlay_job(alice.upload(video_bytes(b"t" * 300)))).job_id
    user_id = alice.token.split(".")[1]
    secret = stack.vars["AUTH_SECRET"]
    ws = stack.url.replace("http://", "ws://")
    for expires in (int(time.time()) - 1, int(time.time()) - 86400):
        ticket = auth.issue_ws_ticket(secret, user_id, job_id, expires)
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(f"{ws}/api/jobs/{job_id}/ws?ticket={ticket}", open_timeout=20)
        assert refused.value.response.status_code == 401
    fresh = auth.issue_ws_ticket(secret, user_id, job_id, int(time.time()) + 60)
    with ws_client.connect(f"{ws}/api/jobs/{job_id}/ws?ticket={fresh}", open_timeout=20) as sock:
        assert '"snapshot"' in sock.recv(timeout=20)


def tamper(url: str, name: str, value: str) -> str:
    """The URL with one query parameter's (raw) value replaced."""
    base, query = url.split("?", 1)
    return base + "?" + "&".join(f"{name}={value}" if p.split("=", 1)[0] == name else p for p in query.split("&"))


@pytest.mark.parametrize("change", ["signature", "date", "key", "signed_headers", "credential"])
def test_a_tampered_upload_url_is_refused_by_storage(change, alice, r2):
    grant = alice.upload_grant("a.mp4", 100)
    url = grant.upload_url
    sig = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    date = parse_qs(urlsplit(url).query)["X-Amz-Date"][0]
    tampered = {
        "signature": lambda: tamper(url, "X-Amz-Signature", ("0" if sig[0] != "0" else "1") + sig[1:]),
        "date": lambda: tamper(url, "X-Amz-Date", date[:9] + "000000Z"),  # earlier the same day
        "key": lambda: url.replace(grant.video_key, grant.video_key.rsplit("/", 1)[0] + "/other.mp4"),
        "signed_headers": lambda: tamper(url, "X-Amz-SignedHeaders", "host"),
        "credential": lambda: url.replace("local-dev-access-key", "someone-elses-key"),
    }[change]()
    assert tampered != url
    r = httpx.put(tampered, content=b"x" * 100, headers=grant.headers)
    assert r.status_code in (400, 401, 403), (change, r.status_code, r.text[:200])
    assert not {k for k in r2_keys(r2) if k.startswith(grant.video_key.rsplit("/", 1)[0])}


def test_storage_holds_an_upload_to_its_signed_length_and_type(alice, r2):
    grant = alice.upload_grant("a.mp4", 100)
    for content, headers in [(b"x" * 101, grant.headers), (b"x" * 4096, grant.headers),
                             (b"x" * 100, {"content-type": "video/webm"}), (b"x" * 100, {})]:
        r = httpx.put(grant.upload_url, content=content, headers=headers)
        assert r.status_code in (400, 403), (len(content), headers, r.status_code)
    assert grant.video_key not in r2_keys(r2)
    assert httpx.put(grant.upload_url, content=b"x" * 100, headers=grant.headers).status_code == 200


def test_the_size_cap_holds_for_single_and_multipart_uploads(alice, r2):
    before = r2_keys(r2)
    for grant in (alice.upload_grant, alice.multipart_grant):
        r = refusal(grant, "a.mp4", MAX_UPLOAD + 1).response
        assert is_error(r, 413, "too_large"), r.text
    info = alice.multipart_grant("a.mp4", (5 << 20) + 10)
    part = info.parts[0]
    # A part's URL is signed for its exact length: more bytes than that are refused (wrangler's local
    # R2 answers 500 to this or hangs up on the body, R2 itself a 4xx), and the upload cannot be
    # completed with them.
    try:
        refused = httpx.put(part.url, content=bytes(part.size_bytes + 1), timeout=60)
        assert refused.status_code >= 400 and "etag" not in refused.headers
    except httpx.TransportError:
        pass  # refused by closing the connection: no ETag was issued either
    done = refusal(alice.complete_multipart, info.video_key, info.upload_id, [{"part_number": 1, "etag": "guess"}])
    assert is_error(done.response, 400, "multipart_failed"), done.response.text
    assert r2_keys(r2) == before


def test_a_ticket_opens_one_socket(alice, stack):
    created = alice.create(overlay_job(alice.upload(video_bytes(b"o" * 300))))
    job_id = created.job_id
    url = alice.socket_url(job_id).websocket_url
    with ws_client.connect(url, open_timeout=20) as sock:
        assert '"snapshot"' in sock.recv(timeout=20)
        for _ in range(3):  # while the first socket is open, and after
            with pytest.raises(InvalidStatus) as refused:
                ws_client.connect(url, open_timeout=20)
            assert refused.value.response.status_code == 401
            assert b"already used" in refused.value.response.body
    with pytest.raises(InvalidStatus):
        ws_client.connect(url, open_timeout=20)
    for fresh in (created.websocket_url, alice.socket_url(job_id).websocket_url):
        with ws_client.connect(fresh, open_timeout=20) as sock:
            assert '"snapshot"' in sock.recv(timeout=20)


def test_presigned_urls_name_the_configured_endpoint_never_the_requests_host(alice, stack, r2):
    job_id = completed_job(alice, stack, r2)
    configured = stack.r2_s3_endpoint + "/"
    for host in ("evil.example", "evil.example:8443", f"127.0.0.1:{stack.port + 1}"):
        headers = {"host": host}  # what a request may claim: the URLs must not follow it
        put = alice.request("POST", "/api/videos/upload-url", headers=headers,
                            json_body={"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 100})
        parts = alice.request("POST", "/api/videos/multipart", headers=headers,
                              json_body={"filename": "b.mp4", "content_type": "video/mp4", "size_bytes": 6 << 20})
        alice.abort_multipart(parts["video_key"], parts["upload_id"])
        download = alice.request("GET", f"/api/jobs/{job_id}/download", headers=headers)
        for url in [put["upload_url"], download["url"]] + [p["url"] for p in parts["parts"]]:
            assert url.startswith(configured), (host, url)
