"""The pods' API: a request must be signed with WORKER_SECRET over exactly what it says (method, path,
time, nonce, body) and never seen before; a signed request still only acts under the lease its pod
holds. (tests/stack covers: no signature, wrong secret, a replayed claim, an old timestamp.)"""

from __future__ import annotations

import json
import time

import pytest

from gpu_worker.control import LeaseLost
from jobspec import SIGNATURE_MAX_SKEW_S

from .conftest import claim_after_expiry, claimed_job, is_error, signed_post
from tests.api_helpers import overlay_job, pod, video_bytes


def progress_body(lease_id: str, frame: int = 10) -> bytes:
    return json.dumps({"lease_id": lease_id, "frame": frame, "total_frames": 100}).encode()


@pytest.mark.parametrize("forgery", ["tampered_body", "other_job", "other_action", "other_method", "future",
                                     "short_nonce", "malformed", "empty_secret"])
def test_a_signature_covers_the_whole_request(forgery, alice, stack):
    job_id, control, grant = claimed_job(alice, stack)
    other_job = alice.create(overlay_job(alice.upload(video_bytes(b"o" * 300)))).job_id
    body = progress_body(grant.lease_id, 50)
    path = f"/api/pod/jobs/{job_id}/progress"
    before = alice.get(job_id)
    if forgery == "tampered_body":
        r = signed_post(stack, path, body, sign_body=progress_body(grant.lease_id, 1))
    elif forgery == "other_job":  # a signature made for another job's path
        r = signed_post(stack, path, body, sign_path=f"/api/pod/jobs/{other_job}/progress")
    elif forgery == "other_action":
        r = signed_post(stack, path, body, sign_path=f"/api/pod/jobs/{job_id}/heartbeat")
    elif forgery == "other_method":
        r = signed_post(stack, path, body, sign_method="GET")
    elif forgery == "future":
        r = signed_post(stack, path, body, ts=int(time.time()) + SIGNATURE_MAX_SKEW_S + 60)
    elif forgery == "short_nonce":
        r = signed_post(stack, path, body, nonce="abc")
    elif forgery == "malformed":
        import httpx

        r = httpx.post(stack.url + path, content=body, headers={"X-Pod-Signature": "t=now,n=x,s="})
    else:
        r = signed_post(stack, path, body, secret="")
    assert is_error(r, 401, "unauthorized"), r.text
    assert alice.get(job_id) == before


def test_a_report_cannot_be_replayed(alice, stack):
    job_id, control, grant = claimed_job(alice, stack)
    path = f"/api/pod/jobs/{job_id}/progress"
    nonce = "replay-0123456789"
    first = signed_post(stack, path, progress_body(grant.lease_id, 40), nonce=nonce)
    assert first.status_code == 200, first.text
    seq = alice.get(job_id).seq
    again = signed_post(stack, path, progress_body(grant.lease_id, 40), nonce=nonce)
    assert is_error(again, 401, "replayed")
    # The same nonce with another body and a fresh signature is still a replay.
    other = signed_post(stack, path, progress_body(grant.lease_id, 80), nonce=nonce)
    assert is_error(other, 401, "replayed")
    assert alice.get(job_id).seq == seq and alice.get(job_id).frame == 40


def test_a_pod_cannot_choose_its_lease_nor_act_for_a_user(alice, stack):
    job_id = alice.create(overlay_job(alice.upload(video_bytes(b"c" * 300)))).job_id
    claim = json.dumps({"pod_id": "pod-x", "lease_id": "my-own-lease"}).encode()
    r = signed_post(stack, f"/api/pod/jobs/{job_id}/claim", claim, nonce="claim-with-lease-01")
    assert is_error(r, 422, "invalid_request") and "lease_id" in r.json()["reason"]
    for action in ("cancel", "retry", "snapshot", "init"):
        r = signed_post(stack, f"/api/pod/jobs/{job_id}/{action}", b"{}", nonce=f"user-action-{action}-0")
        assert is_error(r, 404, "not_found"), (action, r.text)
    smuggled = json.dumps({"lease_id": "x", "frame": 1, "total_frames": 2, "user_id": "usr_x"}).encode()
    r = signed_post(stack, f"/api/pod/jobs/{job_id}/progress", smuggled, nonce="smuggled-user-id-0")
    assert is_error(r, 422, "invalid_request")
    assert alice.get(job_id).status == "pending"


def test_a_pod_cannot_report_under_another_pods_lease(alice, stack):
    job_a, pod_a, grant_a = claimed_job(alice, stack, "pod-a")
    job_b, pod_b, grant_b = claimed_job(alice, stack, "pod-b")
    before = alice.get(job_a)
    for lease in (grant_b.lease_id, "made-up-lease", grant_a.lease_id + "x"):
        with pytest.raises(LeaseLost):
            pod_b.report(job_a, "progress", lease, frame=90, total_frames=100)
        with pytest.raises(LeaseLost):
            pod_b.report(job_a, "complete", lease, output_key=grant_a.output_key, frames=100, size_bytes=10)
    assert alice.get(job_a) == before
    pod_a.report(job_a, "progress", grant_a.lease_id, frame=20, total_frames=100)
    assert alice.get(job_a).frame == 20


def test_a_stale_lease_is_dead_after_the_job_is_claimed_again(alice, stack):
    job_id, old_pod, old = claimed_job(alice, stack, "pod-old")
    old_pod.report(job_id, "checkpoint", old.lease_id, frame=30, total_frames=100)
    # The old pod goes silent for longer than the lease; another pod claims the job.
    new_pod = pod(stack, "pod-new")
    grant = claim_after_expiry(new_pod, job_id)
    assert grant.resume_count == 1 and grant.lease_id != old.lease_id
    new_pod.report(job_id, "progress", grant.lease_id, frame=40, total_frames=100)
    held = alice.get(job_id)

    for action, fields in [("heartbeat", {}), ("progress", dict(frame=99, total_frames=100)),
                           ("checkpoint", dict(frame=90, total_frames=100)),
                           ("interrupted", dict(frame=90)), ("fail", dict(reason="stale", retryable=False)),
                           ("complete", dict(output_key=old.output_key, frames=100, size_bytes=10))]:
        with pytest.raises(LeaseLost):
            old_pod.report(job_id, action, old.lease_id, **fields)
    assert alice.get(job_id) == held

    new_pod.report(job_id, "complete", grant.lease_id, output_key=grant.output_key, frames=100, size_bytes=10)
    done = alice.get(job_id)
    assert done.status == "complete" and done.resume_count == 1
    with pytest.raises(LeaseLost):  # not the lease that finished it: refused, not acknowledged
        old_pod.report(job_id, "complete", old.lease_id, output_key=old.output_key, frames=100, size_bytes=10)
    assert new_pod.report(job_id, "complete", grant.lease_id, output_key=grant.output_key, frames=100,
                          size_bytes=10)["ignored"] is True
    assert alice.get(job_id) == done
