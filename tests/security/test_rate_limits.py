"""Rate limits and quotas (an adversarial run made 50 accounts in 1.6 s, 40 jobs in 1.0 s and ten 5 GiB
multipart uploads in 0.5 s). A stack of its own with tight limits, so the other suites keep theirs:
sign-ups per client address, job creations and upload grants per user, jobs pending or processing per
user, bytes granted per user per UTC day. Every refusal is a 429 with Retry-After and a reason."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from scripts.localstack import LocalStack

from tests.stack.conftest import video_bytes

from .conftest import is_error, user

LIMITS = {"RATE_SIGNUPS_PER_IP": "5/10", "RATE_JOBS_PER_USER": "6/30", "RATE_UPLOADS_PER_USER": "8/30",
          "MAX_ACTIVE_JOBS_PER_USER": "3", "MAX_UPLOAD_BYTES_PER_DAY": str(10 << 20),
          "MAX_UPLOAD_BYTES": str(8 << 20)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(persist_dir=tmp_path_factory.mktemp("limits-stack"), vars=dict(LIMITS)) as s:
        yield s


def refused(r: httpx.Response, code: str) -> int:
    """A 429 as promised (JSON error and reason, Retry-After in whole seconds); its Retry-After."""
    assert is_error(r, 429, code), (r.status_code, r.text)
    retry_after = r.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1, retry_after
    return int(retry_after)


def from_address(stack) -> httpx.Client:
    """A client whose connections come from an address of its own on the loopback network."""
    address = f"127.{random.randrange(1, 255)}.{random.randrange(0, 255)}.{random.randrange(2, 255)}"
    return httpx.Client(base_url=stack.url, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def test_sign_ups_per_address(stack):
    client, other = from_address(stack), from_address(stack)
    started = time.monotonic()
    answers = [client.post("/api/auth/anonymous") for _ in range(8)]
    elapsed = time.monotonic() - started
    assert [r.status_code for r in answers] == [201] * 5 + [429] * 3
    waits = [refused(r, "rate_limited") for r in answers[5:]]
    assert all(1 <= w <= 2 for w in waits) and "5 per 10 s" in answers[5].json()["reason"], waits
    print(f"sign-ups: 5 accepted, 3 refused, {elapsed * 1000:.0f} ms for all 8; Retry-After {waits}")
    assert other.post("/api/auth/anonymous").status_code == 201  # another address has its own bucket
    time.sleep(waits[-1])
    assert client.post("/api/auth/anonymous").status_code == 201


def test_job_creations_per_user(stack):
    alice, bob = user(stack), user(stack)
    key = alice.upload(video_bytes(b"j" * 300))
    statuses = []
    for _ in range(8):  # each cancelled at once: the active-jobs quota stays out of the way
        r = alice.create(key)
        statuses.append(r.status_code)
        if r.status_code == 202:
            assert alice.http.post(f"/api/jobs/{r.json()['job_id']}/cancel").status_code == 200
        else:
            assert 1 <= refused(r, "rate_limited") <= 5
    assert statuses == [202] * 6 + [429] * 2
    assert len(alice.http.get("/api/jobs").json()["jobs"]) == 6  # nothing half-made by a refusal
    assert bob.create(bob.upload(video_bytes(b"b" * 300))).status_code == 202


def test_upload_grants_per_user(stack):
    alice = user(stack)
    body = {"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 100}
    answers = [alice.http.post("/api/videos/upload-url", json=body) for _ in range(10)]
    assert [r.status_code for r in answers] == [200] * 8 + [429] * 2
    refused(answers[-1], "rate_limited")
    r = alice.http.post("/api/videos/multipart", json={**body, "size_bytes": 6 << 20})  # the same bucket
    refused(r, "rate_limited")


def test_jobs_pending_or_processing_per_user(stack):
    alice = user(stack)
    key = alice.upload(video_bytes(b"a" * 300))
    jobs = [alice.create(key) for _ in range(3)]
    assert [r.status_code for r in jobs] == [202] * 3
    r = alice.create(key)
    assert refused(r, "quota_exceeded") == 30 and "3 jobs" in r.json()["reason"]
    assert alice.http.post(f"/api/jobs/{jobs[0].json()['job_id']}/cancel").status_code == 200
    assert alice.create(key).status_code == 202

    bob = user(stack)  # at once: the quota holds for concurrent creates too
    key = bob.upload(video_bytes(b"b" * 300))
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: bob.create(key), range(6)))
    assert sorted(r.status_code for r in answers) == [202] * 3 + [429] * 3, [r.text for r in answers]
    assert len(bob.http.get("/api/jobs").json()["jobs"]) == 3
    for r in answers:
        if r.status_code == 429:
            refused(r, "quota_exceeded")


def seconds_to_utc_midnight() -> float:
    return 86400 - time.time() % 86400


def test_upload_bytes_per_day(stack):
    alice = user(stack)
    grant = {"filename": "a.mp4", "content_type": "video/mp4"}
    assert alice.http.post("/api/videos/upload-url", json={**grant, "size_bytes": 8 << 20}).status_code == 200
    assert alice.http.post("/api/videos/upload-url", json={**grant, "size_bytes": 2 << 20}).status_code == 200
    r = alice.http.post("/api/videos/upload-url", json={**grant, "size_bytes": 1})
    assert abs(refused(r, "quota_exceeded") - seconds_to_utc_midnight()) < 5, r.headers
    assert str(10 << 20) in r.json()["reason"]

    bob = user(stack)  # multipart grants count the same way
    info = bob.http.post("/api/videos/multipart", json={**grant, "size_bytes": 6 << 20})
    assert info.status_code == 200, info.text
    refused(bob.http.post("/api/videos/upload-url", json={**grant, "size_bytes": 5 << 20}), "quota_exceeded")
    refused(bob.http.post("/api/videos/multipart", json={**grant, "size_bytes": 5 << 20}), "quota_exceeded")
    assert bob.http.post("/api/videos/upload-url", json={**grant, "size_bytes": 4 << 20}).status_code == 200
