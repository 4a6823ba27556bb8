"""Whole jobs through the worker CLI: jobs that render, one whose input is not a video."""

from __future__ import annotations

import os

from ..clips import FPS
from ..api_helpers import video_bytes
from .conftest import checkpoint_of, export, output_frames


def test_job_renders_end_to_end(user, r2, short_clip, start_worker, tmp_path):
    job_id = export(user, short_clip)

    worker = start_worker()

    assert worker.wait(90) == 0
    job = user.get(job_id)
    assert job.status == "complete", job
    assert job.progress == 100 and job.resume_count == 0 and job.gpu_seconds > 0
    assert output_frames(user, job_id, tmp_path / "out.mp4") == 4 * FPS
    assert list(r2.keys(checkpoint_of(r2, job_id).prefix)) == []
    done = [line for line in worker.lines() if line["msg"] == "complete"]
    assert done and done[0]["job_id"] == job_id and done[0]["frames"] == 4 * FPS


def test_corrupt_input_fails_the_job_for_good(user, start_worker):
    job_id = export(user, video_bytes(os.urandom(64 << 10)))  # an MP4's first bytes, then noise

    assert start_worker().wait(60) == 0

    job = user.get(job_id)
    assert job.status == "error", job
    assert job.error.startswith("input ") and job.attempts == 0, job.error


def test_jobs_render_side_by_side(user, short_clip, start_worker):
    jobs = [export(user, short_clip) for _ in range(2)]

    worker = start_worker("--concurrency", "2")

    assert worker.wait(90) == 0
    assert [user.get(job_id).status for job_id in jobs] == ["complete", "complete"]
    assert sorted(line["job_id"] for line in worker.lines() if line["msg"] == "complete") == sorted(jobs)
