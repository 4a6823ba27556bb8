"""Idempotency, paging, isolation between users, pod credentials and bad input."""

import json
import time
import uuid

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from gpu_worker.control import ControlPlane
from jobspec import SIGNATURE_HEADER, format_signature_header, pod_signature

from tests.api_helpers import overlay_job, refusal, video_bytes
from .conftest import pod_put


def test_idempotency_key_returns_the_same_job(api, stack, client_for):
    key = api.upload(video_bytes(b"i" * 300))
    headers = {"authorization": f"Bearer {api.token}", "Idempotency-Key": str(uuid.uuid4())}
    # The status codes are the API's promise (202 created, 200 the same job again): read them raw.
    first, second = (httpx.post(f"{stack.url}/api/jobs", json=overlay_job(key), headers=headers) for _ in range(2))
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["job_id"] == second.json()["job_id"] and second.json()["idempotent_replay"]
    other = refusal(api.create, {**overlay_job(key), "project_id": 7}, idempotency_key=headers["Idempotency-Key"])
    assert other.status == 422 and other.error == "idempotency_key_reused"
    stranger = client_for(stack)
    assert refusal(stranger.create, overlay_job(key), idempotency_key=headers["Idempotency-Key"]).status == 404


def test_paging_and_status_filter(api):
    key = api.upload(video_bytes(b"p" * 300))
    ids = [api.create(overlay_job(key)).job_id for _ in range(5)]
    api.cancel(ids[0])
    seen, cursor = [], None
    while True:
        page = api.list(limit=2, cursor=cursor)
        seen += [j.job_id for j in page.jobs]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == ids[::-1]
    assert [j.job_id for j in api.list(["cancelled"]).jobs] == [ids[0]]
    assert refusal(api.list, ["bogus"]).status == 400
    assert refusal(api.list, cursor="!!").status == 400


def test_users_are_isolated(stack, client_for):
    alice, bob = client_for(stack), client_for(stack)
    key = alice.upload(video_bytes(b"a" * 300))
    job_id = alice.create(overlay_job(key)).job_id
    for method, path in [("GET", f"/api/jobs/{job_id}"), ("POST", f"/api/jobs/{job_id}/cancel"),
                         ("POST", f"/api/jobs/{job_id}/retry"), ("GET", f"/api/jobs/{job_id}/download"),
                         ("POST", f"/api/jobs/{job_id}/ws-ticket")]:
        assert refusal(bob.request, method, path).status == 404, path
    assert job_id not in [j.job_id for j in bob.list().jobs]
    assert refusal(bob.create, overlay_job(key)).status == 404  # Alice's upload key is not Bob's input
    ticket_url = alice.socket_url(job_id).websocket_url
    other_job = bob.create(overlay_job(bob.upload(video_bytes(b"b" * 300)))).job_id
    on_bobs_job = ticket_url.replace(f"/api/jobs/{job_id}/", f"/api/jobs/{other_job}/")  # Alice's genuine ticket
    forged = ticket_url.replace(job_id, other_job)  # the ticket names Bob's job, its MAC does not match
    for url in (on_bobs_job, forged):
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(url, open_timeout=10)
        assert refused.value.response.status_code == 401, url
    assert httpx.get(f"{stack.url}/api/jobs", headers={"authorization": "Bearer u1.usr_x.forged"}).status_code == 401
    assert httpx.get(f"{stack.url}/api/jobs").status_code == 401


def test_pod_api_needs_a_valid_fresh_signature(api, stack):
    job_id = api.create(overlay_job(api.upload(video_bytes(b"s" * 300)))).job_id
    path = f"/api/pod/jobs/{job_id}/claim"
    body = json.dumps({"pod_id": "pod-x"}).encode()
    url = stack.url + path
    assert httpx.post(url, content=body).status_code == 401
    wrong = ControlPlane(stack.url, "not-the-secret", pod_id="pod-x", attempts=1).claim(job_id)
    assert wrong.status == 401
    ts, nonce = int(time.time()), uuid.uuid4().hex
    header = {SIGNATURE_HEADER: format_signature_header(
        ts, nonce, pod_signature(stack.vars["WORKER_SECRET"], "POST", path, ts, nonce, body))}
    assert httpx.post(url, content=body, headers=header).status_code == 200
    replay = httpx.post(url, content=body, headers=header)
    assert replay.status_code == 401 and replay.json()["error"] == "replayed"
    old = ts - 600
    stale = {SIGNATURE_HEADER: format_signature_header(
        old, "n" + nonce, pod_signature(stack.vars["WORKER_SECRET"], "POST", path, old, "n" + nonce, body))}
    assert httpx.post(url, content=body, headers=stale).status_code == 401
    assert httpx.post(f"{stack.pull_base}/accounts/x/queues/gpu-jobs/messages/pull", json={}).status_code == 401


@pytest.mark.parametrize("mutate,status,reason", [
    (lambda j: "{not json", 400, "not valid JSON"),
    (lambda j: {**j, "type": "sepia"}, 422, "does not match any of the expected tags"),
    (lambda j: {**j, "params": {"highlight_regions": [{"keyframes": [{"t": 1, "x": 2, "y": 0, "rx": 0.1, "ry": 0.1}]}]}},
     422, "less than or equal to 1"),
    (lambda j: {**j, "params": {"highlight_regions": [{"keyframes": [
        {"t": 1, "x": 0.5, "y": 0.5, "rx": 0.1, "ry": 0.1}, {"t": 0.5, "x": 0.5, "y": 0.5, "rx": 0.1, "ry": 0.1}]}]}},
     422, "must increase strictly"),
    (lambda j: {"type": "framing", "input_video_key": j["input_video_key"],
                "params": {"crop_keyframes": [{"t": -1, "x": 0, "y": 0, "w": 0.5, "h": 0.5}]}}, 422, "greater than or equal"),
    (lambda j: {**j, "input_video_key": j["input_video_key"] + "-missing"}, 404, "does not exist"),
    (lambda j: {**j, "input_video_key": "videos/raw/../../etc/passwd"}, 422, "uploaded video key"),
    (lambda j: {**j, "unexpected": 1}, 422, "Extra inputs are not permitted"),
    (lambda j: {**j, "params": {"highlight_regions": [
        {"keyframes": [{"t": i, "x": 0.5, "y": 0.5, "rx": 0.1, "ry": 0.1} for i in range(3000)]}]}}, 422, "at most 2000"),
    (lambda j: {**j, "params": {"highlight_regions": [
        {"keyframes": [{"t": i, "x": 0.5, "y": 0.5, "rx": 0.1, "ry": 0.1} for i in range(8000)]}]}}, 413, "larger than"),
])
def test_bad_input_is_refused_with_a_reason_and_writes_nothing(api, mutate, status, reason):
    job = mutate(overlay_job(api.upload(video_bytes(b"q" * 300))))
    before = api.list(limit=100).jobs
    body = job if isinstance(job, str) else json.dumps(job)  # sent as it is: `create` would check it first
    refused = refusal(api.request, "POST", "/api/jobs", content=body, headers={"content-type": "application/json"})
    assert refused.status == status, refused
    assert reason in refused.reason
    assert api.list(limit=100).jobs == before


def test_bad_uploads_are_refused(api):
    cases = [(("a.txt", 10, "text/plain"), 415), (("a.mp4", 60 << 20, "video/mp4"), 413),
             (("a.mp4", 0, "video/mp4"), 422)]
    for grant, status in cases:
        assert refusal(api.upload_grant, *grant).status == status, grant


def test_empty_input_object_is_refused(api, stack):
    key = api.upload(b"z")
    pod_put(stack, key, b"")
    refused = refusal(api.create, overlay_job(key))
    assert refused.status == 422 and "empty" in refused.reason


def test_view_url_streams_my_upload_to_the_page(api, stack, client_for):
    """The editor plays an upload from a presigned GET: byte ranges (seeking), inline, owner only."""
    data = bytes(range(256)) * 4
    key = api.upload(data)
    view = api.view_url(key)
    assert view.size_bytes == len(data) and view.expires_at
    assert httpx.get(view.url).content == data
    part = httpx.get(view.url, headers={"range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert "attachment" not in part.headers.get("content-disposition", "")

    other = client_for(stack)
    ghost = key.rsplit("/", 2)[0] + "/feedface/none.mp4"
    mine, missing = refusal(other.view_url, key), refusal(api.view_url, ghost)
    assert mine.status == missing.status == 404 and mine.response.json() == missing.response.json()
    for bad in ({"key": "videos/raw/../x"}, {"key": key, "extra": 1}, {}):
        assert refusal(api.request, "POST", "/api/videos/view-url", json_body=bad).status == 422, bad
