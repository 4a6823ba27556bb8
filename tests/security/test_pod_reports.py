"""A pod holds WORKER_SECRET, so its reports are signed; they are still data the job's DO checks. Each
lease gets its own output key with the grant and `complete` commits only that key (another user's
upload was accepted as an output, and a late pod overwrote a completed job's output); every number is
bounded (frame 2**62 broke the D1 mirror, gpu_seconds 1e308 broke /health); an output that is never
committed (a cancelled job's, a lost lease's) does not stay in R2."""

from __future__ import annotations

import math

import pytest

from gpu_worker.control import ControlPlaneError, LeaseLost
from jobspec import JobView

from tests.api_helpers import pod, video_bytes

from .conftest import claim_after_expiry, claimed_job, is_error, r2_keys, signed_post


def etag(r2, key: str) -> str:
    return r2.s3.head_object(Bucket=r2.bucket, Key=key)["ETag"]


def outputs_of(r2, job_id: str) -> set[str]:
    return {k for k in r2_keys(r2) if k.startswith(f"videos/output/{job_id}")}


def listed(api, job_id: str) -> JobView:
    """The job as D1 lists it."""
    [job] = [j for j in api.list(limit=100).jobs if j.job_id == job_id]
    return job


def test_complete_commits_only_the_key_granted_to_the_lease(alice, bob, stack, r2):
    job_id, control, grant = claimed_job(alice, stack)
    other_job, _, other_grant = claimed_job(alice, stack, "pod-b")
    theirs = bob.upload(video_bytes(b"bob's private video" * 20))
    assert grant.output_key != other_grant.output_key and job_id in grant.output_key
    for key in (theirs, other_grant.output_key, f"videos/output/{job_id}.mp4", grant.output_key + "x"):
        with pytest.raises(ControlPlaneError, match="422"):
            control.report(job_id, "complete", grant.lease_id, output_key=key, frames=10, size_bytes=100)
    assert alice.get(job_id).status == "processing"
    r2.write(grant.output_key, b"rendered" * 50, "video/mp4")
    control.report(job_id, "complete", grant.lease_id, output_key=grant.output_key, frames=10, size_bytes=400)
    url = alice.download_url(job_id).url
    assert grant.output_key in url and theirs not in url


BAD_NUMBERS = [
    ("progress", {"frame": 2**62, "total_frames": 2**62 + 1}),
    ("progress", {"frame": 1, "total_frames": 2**62}),
    ("progress", {"frame": 1, "total_frames": 10, "fps": 1e308}),
    ("progress", {"frame": 1, "total_frames": 10, "eta_s": 1e308}),
    ("checkpoint", {"frame": 2**62, "total_frames": 2**62, "segments": 1, "manifest_key": "m"}),
    ("checkpoint", {"frame": 1, "total_frames": 10, "segments": 2**62, "manifest_key": "m"}),
    ("interrupted", {"frame": 2**62}),
    ("interrupted", {"frame": 1, "gpu_seconds": 1e308}),
    ("fail", {"reason": "x", "gpu_seconds": 1e308}),
    ("complete", {"frames": 2**62, "size_bytes": 10}),
    ("complete", {"frames": 10, "size_bytes": 2**62}),
    ("complete", {"frames": 10, "size_bytes": 10, "gpu_seconds": 1e308}),
]


def test_numbers_in_reports_are_bounded_so_d1_and_health_stay_right(alice, stack):
    job_id, control, grant = claimed_job(alice, stack)
    for action, fields in BAD_NUMBERS:
        if action == "complete":
            fields = {"output_key": grant.output_key, **fields}
        with pytest.raises(ControlPlaneError, match="422"):
            control.report(job_id, action, grant.lease_id, **fields)
    control.report(job_id, "progress", grant.lease_id, frame=5, total_frames=10)
    assert alice.get(job_id).frame == listed(alice, job_id).frame == 5

    gpu_before = alice.health().gpu_seconds
    jobs = [claimed_job(alice, stack, f"pod-{i}") for i in range(2)]
    for jid, ctl, g in jobs:
        with pytest.raises(ControlPlaneError, match="422"):
            ctl.report(jid, "complete", g.lease_id, output_key=g.output_key, frames=10, size_bytes=10,
                       gpu_seconds=1e308)
        ctl.report(jid, "complete", g.lease_id, output_key=g.output_key, frames=10, size_bytes=10, gpu_seconds=1.25)
    health = alice.health()
    assert math.isclose(health.gpu_seconds, gpu_before + 2.5), (gpu_before, health)
    assert health.estimated_gpu_cost_usd > 0
    for jid, _, _ in jobs:
        assert alice.get(jid).gpu_seconds == listed(alice, jid).gpu_seconds == 1.25


def test_after_a_cancel_the_lease_holders_output_does_not_stay(alice, stack, r2):
    job_id, control, grant = claimed_job(alice, stack)
    assert alice.cancel(job_id).status == "cancelled"
    r2.write(grant.output_key, b"late render" * 50, "video/mp4")  # it was uploading when the cancel came
    with pytest.raises(LeaseLost) as lost:
        control.report(job_id, "complete", grant.lease_id, output_key=grant.output_key, frames=10, size_bytes=550)
    assert lost.value.cancelled
    assert outputs_of(r2, job_id) == set()
    job = alice.get(job_id)
    assert job.status == "cancelled" and not job.output_ready


def test_a_late_pod_neither_overwrites_nor_leaves_an_output(alice, stack, r2):
    job_id, late, first = claimed_job(alice, stack, "pod-late")
    # The first pod goes quiet past its lease; a second pod takes the job over.
    second = pod(stack, "pod-second")
    grant = claim_after_expiry(second, job_id)
    assert grant.output_key != first.output_key
    r2.write(first.output_key, b"the late pod's render" * 40, "video/mp4")  # uploaded, never reported
    r2.write(grant.output_key, b"the render that counts" * 40, "video/mp4")
    second.report(job_id, "complete", grant.lease_id, output_key=grant.output_key, frames=10, size_bytes=880)
    committed = etag(r2, grant.output_key)
    assert outputs_of(r2, job_id) == {grant.output_key}  # what no lease committed is cleaned up

    r2.write(first.output_key, b"the late pod, again" * 40, "video/mp4")
    with pytest.raises(LeaseLost):
        late.report(job_id, "complete", first.lease_id, output_key=first.output_key, frames=10, size_bytes=760)
    assert outputs_of(r2, job_id) == {grant.output_key} and etag(r2, grant.output_key) == committed
    download = alice.download_url(job_id)
    assert download.size_bytes == 880 and grant.output_key in download.url


def test_a_lease_id_that_is_not_a_token_is_refused(alice, stack):
    job_id, control, grant = claimed_job(alice, stack)
    for lease in ("../../raw/x", "a/b", "x" * 65, "lease id"):
        body = f'{{"lease_id": "{lease}", "output_key": "k", "frames": 1, "size_bytes": 1}}'.encode()
        r = signed_post(stack, f"/api/pod/jobs/{job_id}/complete", body, nonce=f"lease-shape-{len(lease)}-{lease[:2]}")
        assert is_error(r, 422, "invalid_request"), (lease, r.text)
