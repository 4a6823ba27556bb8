"""gpu_export.Client / AsyncClient on the real stack: upload, create, wait, download, list, cancel, retry."""

from __future__ import annotations

import asyncio
import uuid

import av
import httpx
import pytest

from gpu_export import ApiError, AsyncClient, Client, TimedOut
from jobspec import OverlayJob

from .conftest import OVERLAY


def test_upload_create_wait_download(api: Client, clip, tmp_path):
    sent = []
    key = api.upload(clip, progress=lambda done, total: sent.append((done, total)))
    assert sent[-1] == (clip.stat().st_size, clip.stat().st_size) and key.endswith("/clip.mp4")

    spec = OverlayJob(type="overlay", input_video_key=key, params=OVERLAY)
    created = api.create(spec, idempotency_key="same-request")
    assert created.status == "pending" and created.job.job_id == created.job_id and not created.idempotent_replay
    replay = api.create(spec, idempotency_key="same-request")
    assert replay.job_id == created.job_id and replay.idempotent_replay

    events = []
    job = api.wait(created.job_id, on_event=events.append, timeout_s=120)
    assert job.status == "complete" and job.output_ready and job.total_frames == 45
    seqs = [e.seq for e in events]
    assert seqs == sorted(set(seqs)) and events[-1].type == "complete" and events[-1].job == job

    out = api.download(job.job_id, tmp_path / "out.mp4", progress=lambda d, t: None)
    with av.open(str(out)) as video:
        assert sum(1 for _ in video.decode(video=0)) == 45
    assert out.stat().st_size == job.output_bytes and not list(tmp_path.glob("*.part"))

    listed = list(api.jobs())
    assert [j.job_id for j in listed] == [job.job_id]
    assert api.mark_seen([job.job_id]) == 1 and not api.active().finished_while_away


def test_refusals_are_api_errors_with_reasons(api: Client):
    with pytest.raises(ApiError) as e:
        api.get("no-such-job")
    assert e.value.status == 404 and e.value.error == "not_found" and e.value.reason
    key = f"videos/raw/{uuid.uuid4().hex}/x/clip.mp4"
    with pytest.raises(ApiError) as e:
        api.create({"type": "overlay", "input_video_key": key, "params": OVERLAY})
    assert e.value.status == 404 and "upload it first" in e.value.reason


def test_cancel_and_retry(api: Client, stack, tmp_path):
    damaged = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40  # an MP4 header, then nothing a pod can read
    key = api.upload(damaged, filename="broken.mp4")
    job = api.wait(api.create({"type": "overlay", "input_video_key": key, "params": OVERLAY}).job_id, timeout_s=60)
    assert job.status == "error" and "damaged" in job.error
    again = api.retry(job.job_id)
    assert again.status == "pending"
    assert api.cancel(job.job_id).status in ("cancelled", "error")  # the worker may fail it first


def test_wait_times_out_with_the_last_view(api: Client, clip):
    key = api.upload(clip)
    created = api.create({"type": "overlay", "input_video_key": key, "params": OVERLAY})
    with pytest.raises(TimedOut) as e:
        api.wait(created.job_id, timeout_s=0.01)
    assert e.value.job.job_id == created.job_id
    api.cancel(created.job_id)


def test_async_client_multipart_upload_in_parts(stack, clip, tmp_path):
    """Over the threshold the file goes up in parts, several at a time, and arrives whole."""
    big = tmp_path / "big.mp4"
    big.write_bytes(clip.read_bytes() + bytes(range(256)) * (33 * 4096))  # 33 MiB that start as a video

    async def scenario():
        async with AsyncClient(stack.url) as api:  # the stack's MULTIPART_THRESHOLD_BYTES: 8 MiB
            await api.sign_up_anonymous()
            seen = []
            key = await api.upload(big, progress=lambda d, t: seen.append(d))
            return key, seen

    key, seen = asyncio.run(scenario())
    assert seen[-1] == big.stat().st_size and len(seen) >= 33
    from gpu_worker.storage import R2
    from scripts.gpu_worker_proc import r2_config

    r2 = R2(r2_config(stack))
    r2.download(key, str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    # planned as a multipart upload (the Worker records the declared size on those)
    assert r2.s3.head_object(Bucket=r2.bucket, Key=key)["Metadata"] == {"declared-size": str(big.stat().st_size)}


def test_the_steps_of_an_upload_and_playing_one_back(api: Client, clip):
    """For callers that send the bytes themselves: a grant, the PUT, a presigned GET to play it."""
    data = clip.read_bytes()
    grant = api.upload_grant("steps.mp4", len(data))
    assert httpx.put(grant.upload_url, content=data, headers=grant.headers).status_code == 200
    view = api.view_url(grant.video_key)
    assert view.size_bytes == len(data) and httpx.get(view.url).content == data
    plan = api.multipart_grant("parts.mp4", 9 << 20)
    assert [p.size_bytes for p in plan.parts] == [9 << 20]
    assert api.abort_multipart(plan.video_key, plan.upload_id).aborted
    with pytest.raises(ApiError) as e:
        api.complete_multipart(plan.video_key, plan.upload_id, [{"part_number": 1, "etag": "x"}])
    assert e.value.status == 400 and e.value.error == "multipart_failed"


def test_account_and_webhook_subscription(api: Client, clip):
    me = api.whoami()
    assert me.anonymous and me.user_id in api.token
    secret = api.new_webhook_secret()
    assert secret.secret.startswith("whsec_") and secret.previous_secret_valid_until is None
    spec = {"type": "overlay", "input_video_key": api.upload(clip), "params": OVERLAY}
    created = api.create(spec, webhook_url="https://hooks.example.com/x", webhook_events=["failed"])
    api.cancel(created.job_id)  # sends nothing: only a failure would
    hooks = api.webhook_deliveries(created.job_id)
    assert hooks.webhook == {"url": "https://hooks.example.com/x", "events": ["failed"]} and hooks.deliveries == []
    with pytest.raises(ApiError) as e:
        api.create(spec, webhook_url="https://localhost/x")
    assert e.value.status == 422 and e.value.error == "webhook_refused"


def test_any_call_with_request_and_the_whole_answer_of_a_refusal(api: Client):
    assert api.request("POST", "/api/exports/seen", content='{"job_ids": ["nope"]}') == {"marked": 0}
    with pytest.raises(ApiError) as e:
        api.request("POST", "/api/exports/seen", content="{not json")
    assert e.value.status == 400 and e.value.error == "malformed_json"
    assert e.value.response.json() == {"error": e.value.error, "reason": e.value.reason}
    assert e.value.response.headers["content-type"].startswith("application/json")


def test_wait_leaves_no_socket_open(stack, clip):
    """`wait` returns as soon as the job is finished, with the job's WebSocket closed (not left for the
    garbage collector, whose pending tasks were destroyed when a script ended)."""
    async def scenario():
        async with AsyncClient(stack.url) as api:
            await api.sign_up_anonymous()
            key = await api.upload(clip)
            created = await api.create({"type": "overlay", "input_video_key": key, "params": OVERLAY})
            await api.cancel(created.job_id)
            job = await api.wait(created.job_id, timeout_s=30)
            return job, [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    job, left = asyncio.run(scenario())
    assert job.status == "cancelled" and left == []
