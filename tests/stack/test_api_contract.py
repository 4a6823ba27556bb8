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

from .conftest import Api, overlay_job, video_bytes


def test_idempotency_key_returns_the_same_job(api):
    key = api.upload(video_bytes(b"i" * 300))
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first, second = api.create(key, headers), api.create(key, headers)
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["job_id"] == second.json()["job_id"] and second.json()["idempotent_replay"]
    other = api.create(key, headers, project_id=7)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    assert Api(api.stack).http.post("/api/jobs", json=overlay_job(key), headers=headers).status_code == 404


def test_paging_and_status_filter(stack):
    user = Api(stack)
    key = user.upload(video_bytes(b"p" * 300))
    ids = [user.create(key).json()["job_id"] for _ in range(5)]
    user.http.post(f"/api/jobs/{ids[0]}/cancel")
    seen, cursor = [], None
    while True:
        page = user.http.get("/api/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [j["job_id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids[::-1]
    cancelled = user.http.get("/api/jobs", params={"status": "cancelled"}).json()["jobs"]
    assert [j["job_id"] for j in cancelled] == [ids[0]]
    assert user.http.get("/api/jobs", params={"status": "bogus"}).status_code == 400
    assert user.http.get("/api/jobs", params={"cursor": "!!"}).status_code == 400


def test_users_are_isolated(stack):
    alice, bob = Api(stack), Api(stack)
    key = alice.upload(video_bytes(b"a" * 300))
    job_id = alice.create(key).json()["job_id"]
    for method, path in [("GET", f"/api/jobs/{job_id}"), ("POST", f"/api/jobs/{job_id}/cancel"),
                         ("POST", f"/api/jobs/{job_id}/retry"), ("GET", f"/api/jobs/{job_id}/download"),
                         ("POST", f"/api/jobs/{job_id}/ws-ticket")]:
        assert bob.http.request(method, path).status_code == 404, path
    assert job_id not in [j["job_id"] for j in bob.http.get("/api/jobs").json()["jobs"]]
    assert bob.create(key).status_code == 404  # Alice's upload key is not Bob's input
    ticket_url = alice.http.post(f"/api/jobs/{job_id}/ws-ticket").json()["websocket_url"]
    other_job = bob.create(bob.upload(video_bytes(b"b" * 300))).json()["job_id"]
    on_bobs_job = ticket_url.replace(f"/api/jobs/{job_id}/", f"/api/jobs/{other_job}/")  # Alice's genuine ticket
    forged = ticket_url.replace(job_id, other_job)  # the ticket names Bob's job, its MAC does not match
    for url in (on_bobs_job, forged):
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(url, open_timeout=10)
        assert refused.value.response.status_code == 401, url
    assert httpx.get(f"{stack.url}/api/jobs", headers={"authorization": "Bearer u1.usr_x.forged"}).status_code == 401
    assert httpx.get(f"{stack.url}/api/jobs").status_code == 401


def test_pod_api_needs_a_valid_fresh_signature(api, stack):
    job_id = api.create(api.upload(video_bytes(b"s" * 300))).json()["job_id"]
    path = f"/api/pod/jobs/{job_id}/claim"
    body = json.dumps({"pod_id": "pod-x"}).encode()
    url = stack.url + path
    assert httpx.post(url, content=body).status_code == 401
    wrong = ControlPlane(stack.url, "not-the-secret", pod_id="pod-x", attempts=1).claim(job_id, ["libx264"])
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
    before = api.http.get("/api/jobs", params={"limit": 100}).json()["jobs"]
    body = job if isinstance(job, str) else json.dumps(job)
    r = api.http.post("/api/jobs", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert reason in r.json()["reason"]
    assert api.http.get("/api/jobs", params={"limit": 100}).json()["jobs"] == before


def test_bad_uploads_are_refused(api):
    cases = [({"filename": "a.txt", "content_type": "text/plain", "size_bytes": 10}, 415),
             ({"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 60 << 20}, 413),
             ({"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 0}, 422)]
    for body, status in cases:
        assert api.http.post("/api/videos/upload-url", json=body).status_code == status, body


def test_empty_input_object_is_refused(api, stack):
    from .test_job_flow import api_stack_put

    key = api.upload(b"z")
    api_stack_put(api, key, b"")
    r = api.create(key)
    assert r.status_code == 422 and "empty" in r.json()["reason"]


def test_view_url_streams_my_upload_to_the_page(api, stack):
    """The editor plays an upload from a presigned GET: byte ranges (seeking), inline, owner only."""
    data = bytes(range(256)) * 4
    key = api.upload(data)
    r = api.http.post("/api/videos/view-url", json={"key": key})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["size_bytes"] == len(data) and view["expires_at"]
    assert httpx.get(view["url"]).content == data
    part = httpx.get(view["url"], headers={"range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert "attachment" not in part.headers.get("content-disposition", "")

    other = Api(stack).http
    ghost = key.rsplit("/", 2)[0] + "/feedface/none.mp4"
    mine, missing = other.post("/api/videos/view-url", json={"key": key}), api.http.post(
        "/api/videos/view-url", json={"key": ghost})
    assert mine.status_code == missing.status_code == 404 and mine.json() == missing.json()
    for bad in ({"key": "videos/raw/../x"}, {"key": key, "extra": 1}, {}):
        assert api.http.post("/api/videos/view-url", json=bad).status_code == 422, bad
