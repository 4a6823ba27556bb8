"""One request must not take the runtime down. Python's json parser recurses once per nesting level: in
Pyodide a body about 8,000 levels deep (16 KB) overflowed the stack, workerd aborted the isolate, and
every request in flight, every open WebSocket and the job's Durable Object went with it. Every path
that parses JSON (HTTP bodies of users and pods, the queue pull contract, WebSocket messages) now
measures the text first: too deep is a 400 with a reason, and nothing else notices."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import websockets.sync.client as ws_client

from controlplane.safe_json import MAX_DEPTH
from tests.api_helpers import overlay_job, refusal, video_bytes

from .conftest import claimed_job, is_error, signed_post

DEEP = 8000


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


class Watcher:
    """An open socket on one of the user's jobs: it drops if the isolate is aborted, and the DO's
    `instance_born` (in every pong) changes if the object was rebuilt."""

    def __init__(self, api):
        url = api.create(overlay_job(api.upload(video_bytes(b"w" * 300)))).websocket_url
        self.ws = ws_client.connect(url, open_timeout=20, legacy=True)
        assert json.loads(self.ws.recv(timeout=20))["type"] == "snapshot"
        self.born = self.ping()

    def ping(self) -> float:
        self.ws.send('{"type": "ping"}')
        pong = json.loads(self.ws.recv(timeout=20))
        assert pong["type"] == "pong", pong
        return pong["instance_born"]

    def assert_unharmed(self) -> None:
        assert self.ping() == self.born

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def watcher(alice):
    w = Watcher(alice)
    yield w
    w.close()


def user_paths(alice) -> dict[str, str]:
    """Each public path that parses a JSON body, with a body that nests DEEP levels inside a field."""
    deep = nested(DEEP)
    return {
        "/api/jobs": f'{{"type": "overlay", "params": {deep}}}',
        "/api/exports/seen": f'{{"job_ids": {deep}}}',
        "/api/videos/upload-url": f'{{"filename": {deep}}}',
        "/api/videos/multipart": f'{{"filename": "a.mp4", "content_type": {deep}}}',
        "/api/videos/multipart/complete": f'{{"key": "k", "upload_id": "u", "parts": {deep}}}',
        "/api/videos/multipart/abort": deep,
    }


def test_a_deeply_nested_body_is_refused_and_harms_nothing(alice, watcher):
    for path, body in user_paths(alice).items():
        started = time.monotonic()
        r = refusal(alice.request, "POST", path, content=body, headers={"content-type": "application/json"}).response
        elapsed = time.monotonic() - started
        assert is_error(r, 400, "too_deep"), (path, r.status_code, r.text[:300])
        assert str(MAX_DEPTH) in r.json()["reason"]
        print(f"{path}: refused in {elapsed * 1000:.0f} ms")
    watcher.assert_unharmed()


def test_nesting_up_to_the_limit_is_parsed(alice):
    inside = nested(MAX_DEPTH - 1)  # the body's own object is the first level
    r = refusal(alice.request, "POST", "/api/exports/seen", content=f'{{"job_ids": {inside}}}').response
    assert is_error(r, 422, "invalid_request"), r.text
    r = refusal(alice.request, "POST", "/api/exports/seen", content=f'{{"job_ids": {nested(MAX_DEPTH)}}}').response
    assert is_error(r, 400, "too_deep"), r.text
    # Brackets inside strings are text, not structure.
    assert alice.request("POST", "/api/exports/seen", json_body={"job_ids": ["[" * DEEP, "{" * DEEP]}) == {
        "marked": 0}


def test_a_pod_or_queue_body_nested_deep_is_refused(alice, stack, watcher):
    job_id, _, grant = claimed_job(alice, stack)
    body = f'{{"lease_id": "{grant.lease_id}", "frame": 1, "total_frames": {nested(DEEP)}}}'.encode()
    r = signed_post(stack, f"/api/pod/jobs/{job_id}/progress", body, nonce="deep-body-nonce-1")
    assert is_error(r, 400, "too_deep"), r.text[:300]
    headers = {"authorization": f"Bearer {stack.vars['QUEUE_PULL_TOKEN']}"}
    for action in ("pull", "ack"):
        r = httpx.post(f"{stack.pull_base}/accounts/local/queues/gpu-jobs/messages/{action}",
                       content=f'{{"acks": {nested(DEEP)}}}', headers=headers, timeout=30)
        assert is_error(r, 400, "too_deep"), (action, r.text[:300])
    watcher.assert_unharmed()
    assert alice.get(job_id).frame == 0


@pytest.mark.parametrize("message", [
    '{"type": ' + nested(DEEP) + "}",
    nested(DEEP),
    json.dumps({"type": "ping", "pad": "x" * 100_000}),
])
def test_a_bad_socket_message_gets_an_error_and_the_socket_stays(alice, watcher, message):
    url = alice.create(overlay_job(alice.upload(video_bytes(b"m" * 300)))).websocket_url
    with ws_client.connect(url, open_timeout=20, max_size=None) as ws:
        ws.recv(timeout=20)  # snapshot
        ws.send(message)
        reply = json.loads(ws.recv(timeout=20))
        assert reply["type"] == "error" and reply["error"] in ("too_deep", "too_large"), reply
        assert reply["reason"], reply
        ws.send('{"type": "ping"}')
        assert json.loads(ws.recv(timeout=20))["type"] == "pong"
    watcher.assert_unharmed()
