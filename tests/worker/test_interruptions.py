"""Renders stopped half way.

A pod that goes away mid-job: the job resumes from its R2 checkpoint on the next pod. A spot notice
(SIGTERM, or the cloud's metadata endpoint) stops the render at the next frame: the worker stores
the open segment, reports `interrupted` and exits. A killed worker reports nothing: its lease
expires and the control plane re-queues the job. A job its user cancels stops for good."""

from __future__ import annotations

import signal
import time

import pytest

from ..metadata import AWS_NOTICE
from .conftest import LONG_CLIP_FRAMES as FRAMES
from .conftest import checkpoint_of, export, output_frames, wait_for_checkpoint


def resumed_from(worker) -> int:
    [line] = [line for line in worker.lines() if line["msg"] == "resuming"]
    return line["from_frame"]


def finish_elsewhere(user, r2, job_id, start_worker, tmp_path, stored_frame: int) -> dict:
    """A second pod finishes the job from the stored checkpoint."""
    second = start_worker()
    assert second.wait(120) == 0
    job = user.get(job_id)
    assert job.status == "complete", job
    assert job.resume_count == 1
    assert resumed_from(second) == stored_frame
    assert output_frames(user, job_id, tmp_path / "out.mp4") == FRAMES
    assert list(r2.keys(checkpoint_of(r2, job_id).prefix)) == []
    return job


@pytest.mark.parametrize("notice", ["sigterm", "metadata"])
def test_spot_notice_checkpoints_and_hands_the_job_back(notice, user, r2, long_clip, start_worker, metadata,
                                                        tmp_path):
    job_id = export(user, long_clip)
    metadata.token = "imdsv2-session-token"  # as on AWS with IMDSv2 required
    first = start_worker("--checkpoint-frames", "30",
                         "--spot-metadata-url", metadata.url, "--spot-poll-seconds", "0.2")
    wait_for_checkpoint(user, job_id)

    if notice == "sigterm":
        first.signal(signal.SIGTERM)
    else:
        metadata.answer = (200, AWS_NOTICE)
    noticed = time.monotonic()

    assert first.wait(30) == 0
    assert time.monotonic() - noticed < 30
    job = user.get(job_id)
    assert job.status == "pending" and job.interruptions == 1 and job.attempts == 0, job
    manifest = checkpoint_of(r2, job_id).load_manifest()
    assert 0 < manifest.frame < FRAMES and manifest.frame == job.checkpoint.frame
    assert [line["frame"] for line in first.lines() if line["msg"] == "interrupted"] == [manifest.frame]

    finish_elsewhere(user, r2, job_id, start_worker, tmp_path, manifest.frame)


def test_killed_worker_job_resumes_after_lease_timeout(user, r2, long_clip, start_worker, tmp_path):
    job_id = export(user, long_clip)
    first = start_worker("--checkpoint-frames", "30")
    wait_for_checkpoint(user, job_id)

    first.signal(signal.SIGKILL)
    first.wait(10)
    stored = checkpoint_of(r2, job_id).load_manifest()
    assert 0 < stored.frame < FRAMES

    job = finish_elsewhere(user, r2, job_id, start_worker, tmp_path, stored.frame)
    assert job.attempts == 1 and job.interruptions == 0


def test_cancel_stops_the_render_and_deletes_the_checkpoint(user, r2, long_clip, start_worker):
    job_id = export(user, long_clip)
    worker = start_worker("--checkpoint-frames", "30")
    wait_for_checkpoint(user, job_id)

    assert user.cancel(job_id).status == "cancelled"

    assert worker.wait(30) == 0
    assert user.get(job_id).status == "cancelled"
    assert "cancelled by the user" in worker.messages()
    assert list(r2.keys(checkpoint_of(r2, job_id).prefix)) == []
