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

from gpu_export import ApiError
from scripts.localstack import LocalStack
from tests.api_helpers import overlay_job, refusal, video_bytes

from .conftest import is_error

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
    """An HTTP client whose connections come from an address of its own on the loopback network (the
    API client has no say in its source address)."""
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


def create_or_refusal(api, key: str):
    """The created job, or the ApiError of a refusal."""
    try:
        return api.create(overlay_job(key))
    except ApiError as e:
        return e


def test_job_creations_per_user(new_user):
    alice, bob = new_user(), new_user()
    key = alice.upload(video_bytes(b"j" * 300))
    answers = []
    for _ in range(8):  # each cancelled at once: the active-jobs quota stays out of the way
        answers.append(create_or_refusal(alice, key))
        if isinstance(answers[-1], ApiError):
            assert 1 <= refused(answers[-1].response, "rate_limited") <= 5
        else:
            assert alice.cancel(answers[-1].job_id).status == "cancelled"
    assert [isinstance(a, ApiError) for a in answers] == [False] * 6 + [True] * 2
    assert len(alice.list().jobs) == 6  # nothing half-made by a refusal
    bob.create(overlay_job(bob.upload(video_bytes(b"b" * 300))))


def test_upload_grants_per_user(new_user):
    alice = new_user()
    for _ in range(8):
        alice.upload_grant("a.mp4", 100)
    for _ in range(2):
        refused(refusal(alice.upload_grant, "a.mp4", 100).response, "rate_limited")
    refused(refusal(alice.multipart_grant, "a.mp4", 6 << 20).response, "rate_limited")  # the same bucket


def test_jobs_pending_or_processing_per_user(new_user):
    alice = new_user()
    key = alice.upload(video_bytes(b"a" * 300))
    jobs = [alice.create(overlay_job(key)) for _ in range(3)]
    error = refusal(alice.create, overlay_job(key))
    assert refused(error.response, "quota_exceeded") == 30 and "3 jobs" in error.reason
    assert alice.cancel(jobs[0].job_id).status == "cancelled"
    alice.create(overlay_job(key))

    bob = new_user()  # at once: the quota holds for concurrent creates too
    key = bob.upload(video_bytes(b"b" * 300))
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: create_or_refusal(bob, key), range(6)))
    assert sorted(isinstance(a, ApiError) for a in answers) == [False] * 3 + [True] * 3, answers
    assert len(bob.list().jobs) == 3
    for a in answers:
        if isinstance(a, ApiError):
            refused(a.response, "quota_exceeded")


def seconds_to_utc_midnight() -> float:
    return 86400 - time.time() % 86400


def test_upload_bytes_per_day(new_user):
    alice = new_user()
    alice.upload_grant("a.mp4", 8 << 20)
    alice.upload_grant("a.mp4", 2 << 20)
    error = refusal(alice.upload_grant, "a.mp4", 1)
    assert abs(refused(error.response, "quota_exceeded") - seconds_to_utc_midnight()) < 5, error.response.headers
    assert str(10 << 20) in error.reason

    bob = new_user()  # multipart grants count the same way
    bob.multipart_grant("a.mp4", 6 << 20)
    refused(refusal(bob.upload_grant, "a.mp4", 5 << 20).response, "quota_exceeded")
    refused(refusal(bob.multipart_grant, "a.mp4", 5 << 20).response, "quota_exceeded")
    bob.upload_grant("a.mp4", 4 << 20)
