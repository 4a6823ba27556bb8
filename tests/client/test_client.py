"""gpu_export.Client / AsyncClient on the real stack: upload, create, wait, download, list, cancel, retry."""

from __future__ import annotations

import asyncio
import uuid

import av
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
