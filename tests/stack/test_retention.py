"""Retention on the real stack, run through wrangler's scheduled-event endpoint (the Cron Trigger):
expired uploads and outputs deleted (410 on download, expires_at in the view), orphaned checkpoints
deleted, abandoned multipart uploads aborted, and nothing of a pending or processing job touched."""

from __future__ import annotations

import secrets
import time

import pytest

from gpu_export import Client
from gpu_worker.storage import R2
from scripts.gpu_worker_proc import r2_config
from jobspec import ClaimGrant
from tests.conftest import RETENTION_TTL_S

from tests.api_helpers import claim, overlay_job, pod, refusal, video_bytes


POD = "retention-pod"


def claimed(stack, api: Client, key: str) -> tuple[str, ClaimGrant]:
    job_id = api.create(overlay_job(key)).job_id
    return job_id, claim(stack, job_id, POD)[1]


def checkpoint(r2: R2, job_id: str) -> list[str]:
    keys = [f"checkpoints/{job_id}/seg-{i:05d}.mp4" for i in range(3)] + [f"checkpoints/{job_id}/manifest.json"]
    for k in keys:
        r2.write(k, b"x" * 64, "application/octet-stream")
    return keys


@pytest.fixture
def r2(prod_stack) -> R2:
    return R2(r2_config(prod_stack))


def test_the_sweep_deletes_what_expired_and_never_what_a_running_job_needs(prod_stack, identity_provider, r2,
                                                                          client_for):
    api = client_for(prod_stack, identity_provider.token(f"ret-{secrets.token_hex(4)}", "HS256"))
    video = video_bytes(bytes(500))
    stale_upload = api.upload(video)
    pending_input = api.upload(video)
    pending_id = api.create(overlay_job(pending_input)).job_id
    pending_ckpt = checkpoint(r2, pending_id)  # as after a spot interruption: it will resume from them

    processing_input = api.upload(video)
    processing_id, processing = claimed(prod_stack, api, processing_input)
    processing_ckpt = checkpoint(r2, processing_id)

    failed_id, failed = claimed(prod_stack, api, api.upload(video))
    failed_ckpt = checkpoint(r2, failed_id)
    pod(prod_stack, POD).report(failed_id, "fail", failed.lease_id, reason="bad input", retryable=False)

    done_id, done = claimed(prod_stack, api, api.upload(video))
    r2.write(done.output_key, b"rendered" * 50, "video/mp4")
    pod(prod_stack, POD).report(done_id, "complete", done.lease_id, output_key=done.output_key, frames=10, size_bytes=400)
    view = api.get(done_id)
    assert view.expires_at is not None and api.download_url(done_id).url

    multipart = api.multipart_grant("big.mp4", 6 << 20)

    control = pod(prod_stack, POD)
    waited = time.monotonic() + RETENTION_TTL_S + 0.5
    while time.monotonic() < waited:  # the processing job's pod keeps its lease (LEASE_TIMEOUT_S=3)
        control.report(processing_id, "heartbeat", processing.lease_id)
        time.sleep(0.5)
    late_upload = api.upload(video)  # younger than the TTL

    gone = refusal(api.download_url, done_id)
    assert gone.status == 410 and gone.error == "expired" and "expired at" in gone.reason

    started = time.monotonic()
    prod_stack.run_cron("17 * * * *")
    took = time.monotonic() - started
    keys = set(r2.keys(""))

    assert stale_upload not in keys and done.output_key not in keys
    assert not set(failed_ckpt) & keys, "checkpoints of the failed job are orphans"
    assert {pending_input, processing_input, late_upload} <= keys
    assert set(pending_ckpt) <= keys and set(processing_ckpt) <= keys
    assert api.get(pending_id).status == "pending" and api.get(processing_id).status == "processing"
    aborted = refusal(api.complete_multipart, multipart.video_key, multipart.upload_id,
                      [{"part_number": 1, "etag": "x"}])
    assert aborted.status == 400 and aborted.error == "multipart_failed"
    assert took < 10

    prod_stack.run_cron("17 * * * *")  # a second run finds nothing more of these
    assert set(r2.keys("")) >= {pending_input, processing_input, late_upload, *pending_ckpt, *processing_ckpt}
