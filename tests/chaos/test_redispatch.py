"""No job is lost with its queue message. A job's state is stored before its queue message is sent
(at create, on every re-queue), so a message lost in between, or lost by the queue, would leave the
job pending for ever. The DO's alarm watches pending jobs too: a job that no pod claimed in time gets
another message, at growing intervals; a duplicate is harmless (the claim decides). The chaos run
loses messages on purpose (scripts/chaos.py `lose`) and during the restart of wrangler dev."""

from __future__ import annotations

from controlplane import job_state as js

POLICY = js.Policy(lease_timeout_s=10, heartbeat_interval_s=2, max_attempts=3, requeue_delay_s=4, redispatch_s=60)


def new_job(now=100.0) -> js.Job:
    return js.new_job("j1", "usr_a", {"type": "overlay"}, now)


def test_an_unclaimed_new_job_is_dispatched_again_with_backoff():
    job = new_job()
    assert js.next_alarm(job, POLICY) == 160.0
    assert js.on_alarm(job, 159.0, POLICY).reply["ignored"]
    seq = job.seq

    out = js.on_alarm(job, 160.5, POLICY)

    assert out.requeue_delay_s == 0.0 and out.events == [] and out.changed
    assert (job.status, job.dispatches, job.attempts, job.seq) == ("pending", 2, 0, seq)
    assert js.next_alarm(job, POLICY) == 100.0 + 60 * 2  # 60 s after the message was due, then 120, 240...
    assert js.on_alarm(job, 200.0, POLICY).reply["ignored"]
    assert js.on_alarm(job, 221.0, POLICY).requeue_delay_s == 0.0
    assert js.next_alarm(job, POLICY) == 100.0 + 60 * 4 and job.dispatches == 3


def test_a_claim_stops_the_watch_and_a_requeue_starts_it_after_the_delay():
    job = new_job()
    js.claim(job, "pod-a", "l1", 110.0, POLICY)
    assert js.next_alarm(job, POLICY) == 110.0 + 10 + 0.05  # the lease, not the message
    out = js.on_alarm(job, 121.0, POLICY)  # the pod died
    assert out.requeue_delay_s == 4 and job.status == "pending"
    assert js.next_alarm(job, POLICY) == 121.0 + 4 + 60  # the message is due after its delay
    assert js.on_alarm(job, 150.0, POLICY).reply["ignored"]
    assert js.on_alarm(job, 186.0, POLICY).requeue_delay_s == 0.0


def test_interrupted_and_retried_jobs_are_watched_from_their_new_message():
    job = new_job()
    js.claim(job, "pod-a", "l1", 110.0, POLICY)
    js.interrupted(job, "l1", 30, "spot", 1.0, 130.0)
    assert js.next_alarm(job, POLICY) == 190.0
    js.claim(job, "pod-b", "l2", 140.0, POLICY)
    js.fail(job, "l2", "bad input", False, 0.0, 150.0, POLICY)
    assert job.status == "error" and js.next_alarm(job, POLICY) is None
    js.retry(job, 500.0)
    assert js.next_alarm(job, POLICY) == 560.0


def test_finished_jobs_and_jobs_stored_before_the_watch_existed():
    job = new_job()
    js.claim(job, "pod-a", "l1", 110.0, POLICY)
    js.complete(job, "l1", js.output_key("j1", "l1"), 10, 10, 1.0, 120.0)
    assert js.next_alarm(job, POLICY) is None
    assert js.on_alarm(job, 1e9, POLICY).reply["ignored"] and job.status == "complete"
    old = {k: v for k, v in new_job().to_dict().items() if k not in ("dispatch_due", "redispatches")}
    legacy = js.Job.from_dict(old)
    assert js.next_alarm(legacy, POLICY) == legacy.updated_at + 60
