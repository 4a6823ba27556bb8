"""A credential with bytes outside ASCII is a wrong credential: 401, never a 500. (hmac.compare_digest
refuses a str with non-ASCII characters with a TypeError; every credential is compared as bytes.)"""

from __future__ import annotations

import time

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from jobspec import SIGNATURE_HEADER
from tests.api_helpers import overlay_job, video_bytes

from .conftest import is_error

NON_ASCII = ["\u00e9".encode(), b"\xe9", "\u2603".encode(), b"\xff\xfe"]


@pytest.mark.parametrize("raw", NON_ASCII)
def test_a_bearer_token_with_non_ascii_bytes_is_unauthorized(alice, stack, raw):
    user_id = alice.token.split(".")[1]
    for token in (f"u1.{user_id}.".encode() + raw, alice.token.encode() + raw, b"u1." + raw + b".abc"):
        r = httpx.get(f"{stack.url}/api/jobs", headers={"authorization": b"Bearer " + token})
        assert is_error(r, 401, "unauthorized"), (token, r.status_code, r.text)


@pytest.mark.parametrize("raw", NON_ASCII)
def test_a_pod_signature_with_non_ascii_bytes_is_unauthorized(alice, stack, raw):
    job_id = alice.create(overlay_job(alice.upload(video_bytes(b"n" * 300)))).job_id
    for part in ("s", "n"):
        fields = {"t": str(int(time.time())).encode(), "n": b"nonce-0123456789", "s": b"ab" * 32}
        fields[part] = fields[part][:-2] + raw
        header = b",".join(k.encode() + b"=" + v for k, v in fields.items())
        r = httpx.post(f"{stack.url}/api/pod/jobs/{job_id}/claim", content=b'{"pod_id": "p"}',
                       headers={SIGNATURE_HEADER: header})
        assert is_error(r, 401, "unauthorized"), (part, r.status_code, r.text)
    assert alice.get(job_id).status == "pending"


@pytest.mark.parametrize("raw", NON_ASCII)
def test_a_queue_token_with_non_ascii_bytes_is_unauthorized(stack, raw):
    token = stack.vars["QUEUE_PULL_TOKEN"].encode()
    for given in (token[:-1] + raw, raw):
        r = httpx.post(f"{stack.pull_base}/accounts/local/queues/gpu-jobs/messages/pull", content=b"{}",
                       headers={"authorization": b"Bearer " + given})
        assert is_error(r, 401, "unauthorized"), (given, r.status_code, r.text)


@pytest.mark.parametrize("raw", ["%C3%A9", "%E9", "%E2%98%83", "\u00b2", "%D9%A3"])
def test_a_socket_ticket_with_non_ascii_characters_is_unauthorized(alice, stack, raw):
    job_id = alice.create(overlay_job(alice.upload(video_bytes(b"t" * 300)))).job_id
    url = alice.socket_url(job_id).websocket_url
    base, ticket = url.split("?ticket=")
    *head, mac = ticket.split(".")
    user_id = head[0]
    for forged in [".".join(head + [mac[:-2] + raw]), ".".join(head[:-1] + [raw, mac]),
                   f"{user_id}.{job_id}.{raw}.{mac}", f"{user_id}.{job_id}.99999999{raw}.{mac}"]:
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(f"{base}?ticket={forged}", open_timeout=20)
        assert refused.value.response.status_code == 401, (forged, refused.value.response.body)
