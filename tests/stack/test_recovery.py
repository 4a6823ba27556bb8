"""Pods die, leases expire, the alarm re-queues; duplicates and late events change nothing."""

import time

import pytest

from gpu_worker.control import ControlPlane, LeaseLost
from jobspec import ClaimGrant

from tests.api_helpers import overlay_job, refusal, video_bytes
from .conftest import Socket, take_message


def started_job(api, queue, pod):
    job_id = api.create(overlay_job(api.upload(video_bytes(b"v" * 500)))).job_id
    message = take_message(queue, job_id)
    grant = pod.claim(job_id)
    assert isinstance(grant, ClaimGrant), grant
    queue.ack([message.lease_id])
    return job_id, grant


def test_dead_pod_is_requeued_resumed_then_dead_lettered(api, queue, pod, stack):
    job_id, grant = started_job(api, queue, pod)
    sock = Socket(api.socket_url(job_id).websocket_url)
    assert sock.next()["job"]["status"] == "processing"
    pod.report(job_id, "progress", grant.lease_id, frame=60, total_frames=100)
    pod.report(job_id, "checkpoint", grant.lease_id, frame=50, total_frames=100)

    # The pod goes silent: after LEASE_TIMEOUT_S the alarm takes the lease back and re-queues.
    requeued = sock.until("requeued", timeout=15)
    assert requeued["job"]["attempts"] == 1 and requeued["job"]["checkpoint"]["frame"] == 50
    assert requeued["job"]["status"] == "pending" and requeued["max_attempts"] == 2
    assert requeued["cause"] == "lease_expired"
    with pytest.raises(LeaseLost):
        pod.report(job_id, "heartbeat", grant.lease_id)

    message = take_message(queue, job_id, timeout=15)
    assert message.body["attempt"] == 2
    second = ControlPlane(stack.url, stack.vars["WORKER_SECRET"], pod_id="pod-b", attempts=1)
    grant2 = second.claim(job_id)
    assert isinstance(grant2, ClaimGrant) and grant2.resume_count == 1 and grant2.attempt == 2
    resumed = sock.until("resumed")
    assert resumed["job"]["checkpoint"] == {"frame": 50, "total_frames": 100, "resume_count": 1}
    assert resumed["pod_id"] == "pod-b" and api.get(job_id).checkpoint.model_dump() == resumed["job"]["checkpoint"]

    # Silent again: MAX_ATTEMPTS (2) used up -> error, dead-lettered.
    error = sock.until("error", timeout=15)
    assert "gave up after 2 attempts" in error["job"]["error"]
    sock.close()
    job = api.get(job_id)
    assert job.status == "error" and job.attempts == 2
    assert api.health().dead_letters >= 1


def test_heartbeats_keep_the_lease(api, queue, pod):
    job_id, grant = started_job(api, queue, pod)
    for _ in range(5):  # 5 s > the 3 s lease timeout
        pod.report(job_id, "heartbeat", grant.lease_id)
        time.sleep(1)
    assert api.get(job_id).status == "processing"
    pod.report(job_id, "fail", grant.lease_id, reason="input is not a video", retryable=False)


def test_second_claim_is_refused(api, queue, pod, stack):
    job_id, _ = started_job(api, queue, pod)
    other = ControlPlane(stack.url, stack.vars["WORKER_SECRET"], pod_id="pod-b", attempts=1)
    refused = other.claim(job_id)
    assert refused.status == 409 and refused.body["error"] == "already_leased"


def test_duplicate_and_late_events_after_complete_change_nothing(api, queue, pod, stack):
    job_id, grant = started_job(api, queue, pod)
    pod.report(job_id, "progress", grant.lease_id, frame=50, total_frames=100)
    done = dict(output_key=grant.output_key, frames=100, size_bytes=10, gpu_seconds=1.0)
    pod.report(job_id, "complete", grant.lease_id, **done)
    before = api.get(job_id)

    # The finishing pod's repeats are acknowledged and ignored (it may retry after a lost reply).
    assert pod.report(job_id, "complete", grant.lease_id, **done)["ignored"] is True
    assert pod.report(job_id, "fail", grant.lease_id, reason="late", retryable=True)["ignored"] is True
    for action, fields in [("progress", dict(frame=99, total_frames=100)), ("heartbeat", {}),
                           ("checkpoint", dict(frame=99, total_frames=100)),
                           ("interrupted", dict(frame=80))]:
        with pytest.raises(LeaseLost):
            pod.report(job_id, action, grant.lease_id, **fields)
    refused = pod.claim(job_id)
    assert refused.status == 409 and refused.body["error"] == "job_finished"
    assert refusal(api.cancel, job_id).status == 409
    assert api.get(job_id) == before


def test_progress_is_monotonic(api, queue, pod):
    job_id, grant = started_job(api, queue, pod)
    pod.report(job_id, "progress", grant.lease_id, frame=70, total_frames=100)
    assert pod.report(job_id, "progress", grant.lease_id, frame=40, total_frames=100)["ignored"] is True
    assert api.get(job_id).progress == 70.0


def test_spot_interruption_requeues_at_once_without_using_an_attempt(api, queue, pod, stack):
    job_id, grant = started_job(api, queue, pod)
    pod.report(job_id, "checkpoint", grant.lease_id, frame=30, total_frames=90)
    pod.report(job_id, "interrupted", grant.lease_id, frame=30, reason="spot notice")
    job = api.get(job_id)
    assert job.status == "pending" and job.interruptions == 1 and job.attempts == 0
    queue.ack([take_message(queue, job_id, timeout=10).lease_id])
    grant2 = ControlPlane(stack.url, stack.vars["WORKER_SECRET"], pod_id="pod-c").claim(job_id)
    assert grant2.resume_count == 1


def test_cancel_reaches_the_pod_and_retry_requeues(api, queue, pod):
    job_id, grant = started_job(api, queue, pod)
    assert api.cancel(job_id).status == "cancelled"
    with pytest.raises(LeaseLost) as lost:
        pod.report(job_id, "heartbeat", grant.lease_id)
    assert lost.value.cancelled
    assert refusal(api.retry, job_id).status == 409  # only failed jobs

    job_id, grant = started_job(api, queue, pod)
    pod.report(job_id, "fail", grant.lease_id, reason="R2 unavailable", retryable=False)
    assert api.get(job_id).error == "R2 unavailable"
    assert api.retry(job_id).status == "pending"
    assert take_message(queue, job_id).body["attempt"] == 2


def test_a_retried_job_that_finishes_while_away_is_announced_again(api, queue, pod):
    job_id, grant = started_job(api, queue, pod)
    pod.report(job_id, "fail", grant.lease_id, reason="R2 unavailable", retryable=False)
    assert api.mark_seen([job_id]) == 1
    api.retry(job_id)
    take_message(queue, job_id)
    grant = pod.claim(job_id)
    pod.report(job_id, "complete", grant.lease_id, output_key=grant.output_key, frames=10, size_bytes=10)
    away = api.active().finished_while_away
    assert [j.status for j in away if j.job_id == job_id] == ["complete"]


def test_the_list_shows_a_running_job_s_rate_and_time_left(api, queue, pod):
    job_id, grant = started_job(api, queue, pod)
    pod.report(job_id, "progress", grant.lease_id, frame=30, total_frames=90, fps=15.0, eta_s=4.0)
    listed = {j.job_id: j for j in api.list().jobs}[job_id]
    active = {j.job_id: j for j in api.active().active}[job_id]
    assert (listed.fps, listed.eta_s) == (active.fps, active.eta_s) == (15.0, 4.0)
