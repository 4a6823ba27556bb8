"""The job state machine's rules, without a runtime."""

import pytest

from controlplane import job_state as js
from controlplane.job_state import Policy, Rejected
from jobspec import JobEvent, JobView

POLICY = Policy(lease_timeout_s=10, max_attempts=3, requeue_delay_s=2)


def processing(now=100.0, lease="L1"):
    job = js.new_job("j1", "u1", {"type": "overlay"}, now=0.0)
    js.claim(job, "pod-a", lease, now, POLICY)
    return job


def test_claim_grants_one_lease():
    job = processing()
    assert job.status == "processing" and job.lease_id == "L1"
    with pytest.raises(Rejected) as e:
        js.claim(job, "pod-b", "L2", 105.0, POLICY)
    assert e.value.code == "already_leased"


def test_expired_lease_can_be_taken_over_and_counts_an_attempt():
    job = processing()
    out = js.claim(job, "pod-b", "L2", 111.0, POLICY)
    assert job.lease_id == "L2" and job.attempts == 1 and out.requeue_delay_s is None


def test_progress_only_moves_forward_and_caps_below_100():
    job = processing()
    js.progress(job, "L1", 50, 100, 30.0, 2.0, 101.0)
    assert js.progress(job, "L1", 40, 100, 30.0, 2.0, 102.0).reply["ignored"]
    js.progress(job, "L1", 100, 100, 30.0, 0.0, 103.0)
    assert job.progress == 99.9


def test_seq_grows_by_one_with_every_event():
    job = processing()
    first = job.seq
    seqs = [js.progress(job, "L1", f, 100, 1, None, 101.0).events[0]["seq"] for f in (10, 20, 30)]
    assert seqs == [first + 1, first + 2, first + 3] and first >= 1


def test_events_carry_the_job_and_only_what_it_does_not_say():
    """One spelling per field: an event's own fields are never the job view's."""
    job = processing()
    outcomes = [js.progress(job, "L1", 10, 100, 1, None, 101.0), js.checkpoint(job, "L1", 10, 100, 102.0),
                js.interrupted(job, "L1", 10, "spot", 0.0, 103.0), js.claim(job, "pod-b", "L2", 104.0, POLICY),
                js.complete(job, "L2", js.output_key("j1", "L2"), 5, 100, 1.0, 105.0)]
    for out in outcomes:
        event = js.published(out.events[0], job)
        own = set(event) - {"type", "job_id", "seq", "job"}
        assert not own & set(event["job"]), event["type"]
        assert JobEvent.model_validate(event).job == JobView.model_validate(js.view(job))


def test_the_job_view_is_the_schema_s_job_view():
    assert set(js.view(processing())) == set(JobView.model_fields)


def test_alarm_requeues_with_backoff_then_gives_up():
    job = processing()
    assert js.expire_lease(job, 105.0, POLICY).reply["ignored"]
    out = js.expire_lease(job, 111.0, POLICY)
    assert job.status == "pending" and out.requeue_delay_s == 2 and job.attempts == 1
    js.claim(job, "pod-b", "L2", 120.0, POLICY)
    assert js.expire_lease(job, 131.0, POLICY).requeue_delay_s == 4
    js.claim(job, "pod-c", "L3", 140.0, POLICY)
    out = js.expire_lease(job, 151.0, POLICY)
    assert job.status == "error" and out.dead_letter and "gave up after 3 attempts" in job.error


def test_resume_counts_claims_from_a_checkpoint():
    job = processing()
    js.checkpoint(job, "L1", 30, 90, 101.0)
    js.interrupted(job, "L1", 30, "spot", 0.0, 102.0)
    assert job.attempts == 0 and job.interruptions == 1
    out = js.claim(job, "pod-b", "L2", 103.0, POLICY)
    assert out.events[0]["type"] == "resumed" and job.checkpoint_frame == 30 and job.resume_count == 1


def test_terminal_states_never_change():
    job = processing()
    out = js.output_key(job.job_id, "L1")
    js.complete(job, "L1", out, 10, 90, 1.0, 110.0)
    assert js.complete(job, "L1", out, 10, 90, 1.0, 111.0).reply["ignored"]
    for action in (lambda: js.cancel(job, 112.0), lambda: js.retry(job, 112.0),
                   lambda: js.progress(job, "L1", 95, 100, 1, None, 112.0),
                   lambda: js.claim(job, "pod-b", "L2", 112.0, POLICY)):
        with pytest.raises(Rejected):
            action()
    assert job.status == "complete" and job.progress == 100.0


def test_complete_commits_only_the_leases_own_key_and_discards_what_cannot_be_committed():
    job = processing()
    assert js.claim(js.new_job("j2", "u", job.spec, 100.0), "pod-b", "L9", 100.0, POLICY).reply["output_key"] \
        == js.output_key("j2", "L9") == "videos/output/j2/L9.mp4"
    for wrong in ("videos/raw/usr_b/u/x.mp4", js.output_key("j2", "L1"), js.output_key(job.job_id, "L2")):
        with pytest.raises(Rejected) as refused:
            js.complete(job, "L1", wrong, 10, 90, 1.0, 110.0)
        assert refused.value.status == 422 and refused.value.discard is None
    with pytest.raises(Rejected) as refused:  # a lease that is not held: its own output is garbage
        js.complete(job, "L0", js.output_key(job.job_id, "L0"), 10, 90, 1.0, 110.0)
    assert refused.value.status == 409 and refused.value.discard == js.output_key(job.job_id, "L0")
    js.cancel(job, 111.0)
    with pytest.raises(Rejected) as refused:  # the cancelled lease holder's output goes too
        js.complete(job, "L1", js.output_key(job.job_id, "L1"), 10, 90, 1.0, 112.0)
    assert refused.value.status == 409 and refused.value.discard == js.output_key(job.job_id, "L1")
    assert job.status == "cancelled" and job.output_key is None


def test_a_stale_report_still_renews_the_lease():
    job = processing()
    js.progress(job, "L1", 50, 100, 30.0, 1.0, 101.0)
    js.checkpoint(job, "L1", 40, 100, 102.0)
    for out in (js.progress(job, "L1", 50, 100, 30.0, 1.0, 104.0), js.checkpoint(job, "L1", 40, 100, 106.0)):
        assert out.reply["ignored"] and out.changed and not out.events  # stored, nothing announced
    assert job.heartbeat_at == 106.0 and js.expire_lease(job, 106.0 + POLICY.lease_timeout_s, POLICY).reply["ignored"]


def test_retry_only_from_error_keeps_the_checkpoint():
    job = processing()
    js.checkpoint(job, "L1", 40, 100, 101.0)
    js.fail(job, "L1", "boom", False, 0.0, 102.0, POLICY)
    out = js.retry(job, 103.0)
    assert job.status == "pending" and job.attempts == 0 and job.checkpoint_frame == 40 and out.requeue_delay_s == 0


def test_view_has_the_design_shape():
    view = js.view(processing())
    assert {"job_id", "status", "progress", "checkpoint", "timing", "seq", "error"} <= view.keys()
    assert view["timing"]["created_at"].endswith("Z")


def test_a_heartbeat_is_answered_with_the_job_s_status_only():
    """A cancelled job refuses the heartbeat (409, status cancelled): the answer needs no cancel flag."""
    job = processing()
    assert js.heartbeat(job, "L1", 101.0).reply == {"status": "processing"}
    js.cancel(job, 102.0)
    with pytest.raises(Rejected) as e:
        js.heartbeat(job, "L1", 103.0)
    assert e.value.status == 409


def test_a_lease_taken_back_is_flagged_for_the_lease_expiry_metric():
    job = processing()
    assert not js.expire_lease(job, 105.0, POLICY).lease_expired  # alive
    assert js.expire_lease(job, 111.0, POLICY).lease_expired
    job = processing()
    assert js.claim(job, "pod-b", "L2", 111.0, POLICY).lease_expired  # another pod takes an expired lease
    assert not js.claim(js.new_job("j2", "u", {"type": "overlay"}, 0.0), "pod-a", "L9", 1.0, POLICY).lease_expired
    assert not js.heartbeat(job, "L2", 112.0).lease_expired
