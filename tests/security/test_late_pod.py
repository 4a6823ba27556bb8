"""A pod cut off from the control plane (every request a 503) and paused past its lease, while a second
pod finishes the job. Found by an adversarial run: the late pod then rendered on, uploaded its output
over the committed one (the object changed, the API still gave the first size) and left its checkpoint
segments behind. Now a pod counts its lease as lost once no report was accepted for the lease timeout
(as the control plane counts it), stores nothing after that, and confirms the lease before it uploads
the output, to a key of that lease's own."""

from __future__ import annotations

import signal

import pytest

from scripts.gpu_worker_proc import GpuWorker
from tests.api_helpers import overlay_job
from tests.chaos.harness.proxy import FaultProxy
from tests.clips import FPS, make_clip
from tests.polling import wait_until

from .conftest import STACK_VARS, leave_only, r2_keys

LEASE_TIMEOUT_S = float(STACK_VARS["LEASE_TIMEOUT_S"])
SECONDS = 40


@pytest.fixture
def proxy(stack):
    """The pod API through a proxy with no faults of its own: the tests set `cut` (every request a 503)
    or `delay_s` (a slow control plane)."""
    server = FaultProxy(stack.url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("late-pod") / "clip.mp4", SECONDS)


def checkpoint_frame(alice, job_id: str) -> int:
    checkpoint = alice.get(job_id).checkpoint
    return checkpoint.frame if checkpoint else 0


def create_overlay(alice, key: str) -> str:
    """An overlay job of alice's on the upload `key`; its id."""
    return alice.create(overlay_job(key)).job_id


def test_a_paused_cut_off_pod_leaves_the_finished_job_alone(alice, stack, queue, r2, proxy, clip, tmp_path):
    job_id = create_overlay(alice, alice.upload(clip))
    leave_only(queue, [job_id])
    late = GpuWorker(stack, tmp_path, "pod-late", "--once", "--api-url", proxy.url, "--checkpoint-frames", "300")
    second = None
    try:
        # Right after its first checkpoint the pod is cut off and paused (its next segment is 300 frames
        # away: a pod paused in the middle of storing one can still land it late, R2 has no fencing).
        wait_until(lambda: checkpoint_frame(alice, job_id), 120, "a checkpoint", interval=0.05)
        proxy.cut = True
        late.signal(signal.SIGSTOP)
        stopped_at = alice.get(job_id).frame
        assert stopped_at < SECONDS * FPS

        # The control plane takes the lease back; a second pod resumes the job and completes it.
        wait_until(lambda: alice.get(job_id).status == "pending", 4 * LEASE_TIMEOUT_S + 10, "the lease to expire",
                   interval=0.05)
        leave_only(queue, [job_id])
        second = GpuWorker(stack, tmp_path, "pod-second", "--once", "--checkpoint-frames", "300")
        assert second.wait(120) == 0
        done = alice.get(job_id)
        assert done.status == "complete" and done.resume_count == 1, done
        [output] = [k for k in r2_keys(r2) if k.startswith(f"videos/output/{job_id}")]
        committed = r2.s3.head_object(Bucket=r2.bucket, Key=output)

        # The late pod wakes up, still cut off.
        late.signal(signal.SIGCONT)
        assert late.wait(60) == 0
    finally:
        for worker in (late, second):
            if worker:
                worker.signal(signal.SIGCONT)
                worker.kill()

    keys = r2_keys(r2)
    assert [k for k in keys if k.startswith(f"videos/output/{job_id}")] == [output]
    now = r2.s3.head_object(Bucket=r2.bucket, Key=output)
    fields = ("ETag", "ContentLength", "LastModified")  # the same render may give the same bytes: not rewritten
    assert [now[f] for f in fields] == [committed[f] for f in fields]
    assert alice.download_url(job_id).size_bytes == now["ContentLength"]
    assert [k for k in keys if k.startswith(f"checkpoints/{job_id}/")] == []
    lines = late.lines()
    assert any(line["msg"].startswith("lease lost: no report accepted") for line in lines), lines[-10:]
    assert not [line for line in lines if line["msg"].startswith("complete")]
    assert alice.get(job_id) == done


def test_a_slow_control_plane_is_not_a_lost_lease(alice, stack, queue, proxy, clip, tmp_path):
    """Answers that take most of the lease timeout still keep the lease: a report on its way decides."""
    proxy.delay_s = 0.7 * LEASE_TIMEOUT_S
    job_id = create_overlay(alice, alice.upload(clip))
    leave_only(queue, [job_id])
    worker = GpuWorker(stack, tmp_path, "pod-slow", "--once", "--api-url", proxy.url)
    try:
        assert worker.wait(120) == 0
    finally:
        worker.kill()
    job, lines = alice.get(job_id), worker.lines()
    assert job.status == "complete" and job.attempts == 0, (job, lines[-6:])
    assert not [line for line in lines if line["msg"].startswith("lease lost")]
