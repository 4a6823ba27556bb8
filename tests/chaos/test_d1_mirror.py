"""D1 is the DO's mirror: a job written by the DO's SQL (on SQLite, D1's engine, with every migration
applied) must read back through the job list exactly as the DO shows it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from controlplane import job_state
from controlplane.store import insert_job_sql, job_from_row, mirror_sql

MIGRATIONS = sorted((Path(__file__).resolve().parents[2] / "migrations").glob("*.sql"))
LIVE_ONLY = {"fps", "eta_s"}  # shown while a pod reports; not part of the mirror


def d1() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    for migration in MIGRATIONS:
        db.executescript(migration.read_text())
    return db


def interrupted_job() -> job_state.Job:
    """A job that lost a lease, was spot-interrupted after a checkpoint, resumed and completed."""
    policy = job_state.Policy(lease_timeout_s=4, max_attempts=5)
    job = job_state.new_job("j1", "usr_a", {"type": "overlay", "input_video_key": "k", "params": {}}, 100.0)
    job_state.claim(job, "pod-a", "lease-1", 101.0, policy)
    job_state.checkpoint(job, "lease-1", 30, 120, 102.0)
    job_state.expire_lease(job, 110.0, policy)
    job_state.claim(job, "pod-b", "lease-2", 111.0, policy)
    job_state.checkpoint(job, "lease-2", 60, 120, 112.0)
    job_state.interrupted(job, "lease-2", 60, "spot interruption notice", 1.5, 113.0)
    job_state.claim(job, "pod-c", "lease-3", 114.0, policy)
    job_state.complete(job, "lease-3", job_state.output_key("j1", "lease-3"), 1234, 120, 2.0, 116.0)
    return job


def listed(db: sqlite3.Connection, job_id: str) -> dict:
    return job_state.view(job_from_row(dict(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())))


def test_the_job_list_shows_what_the_do_shows():
    job = interrupted_job()
    assert (job.attempts, job.resume_count, job.interruptions) == (1, 2, 1)
    fresh = job_state.new_job(job.job_id, job.user_id, job.spec, job.created_at)
    db = d1()
    db.execute(*insert_job_sql(fresh))
    assert listed(db, job.job_id) == job_state.view(fresh)

    db.execute(*mirror_sql(job))

    do_view = {k: v for k, v in job_state.view(job).items() if k not in LIVE_ONLY}
    d1_view = {k: v for k, v in listed(db, job.job_id).items() if k not in LIVE_ONLY}
    assert d1_view == do_view


def test_an_older_mirror_write_does_not_undo_a_newer_one():
    job = interrupted_job()
    db = d1()
    db.execute(*insert_job_sql(job_state.new_job(job.job_id, job.user_id, job.spec, job.created_at)))
    db.execute(*mirror_sql(job))
    stale = job_state.Job.from_dict({**job.to_dict(), "status": "processing", "seq": job.seq - 1, "interruptions": 0})
    db.execute(*mirror_sql(stale))
    assert listed(db, job.job_id)["status"] == "complete" and listed(db, job.job_id)["interruptions"] == 1
