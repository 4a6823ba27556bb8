"""Create -> queue -> pull -> claim -> progress over a real WebSocket -> complete -> recovery list."""

import httpx
import pytest

from gpu_export import ApiError
from gpu_worker.storage import R2
from scripts.gpu_worker_proc import r2_config
from jobspec import ClaimGrant, JobEvent

from tests.api_helpers import overlay_job, video_bytes
from .conftest import Socket, pod_put, take_message


def test_job_lifecycle_end_to_end(api, pod, queue, stack, tmp_path):
    video = video_bytes(bytes(range(256)) * 40)
    key = api.upload(video)
    created = api.create(overlay_job(key))
    job_id = created.job_id
    assert created.status == "pending" and not created.idempotent_replay

    sock = Socket(created.websocket_url)
    snapshot = sock.next()
    assert snapshot["type"] == "snapshot" and snapshot["job"]["status"] == "pending"

    message = take_message(queue, job_id)
    assert message.body == {"job_id": job_id, "attempt": 1} and message.attempts == 1
    grant = pod.claim(job_id)
    assert isinstance(grant, ClaimGrant), grant
    assert grant.spec["input_video_key"] == key and grant.output_key == f"videos/output/{job_id}/{grant.lease_id}.mp4"
    assert queue.ack([message.lease_id])["ackCount"] == 1

    for frame in (30, 60, 90):
        pod.report(job_id, "progress", grant.lease_id, frame=frame, total_frames=120, fps=30.0, eta_s=1.0)
    pod.report(job_id, "checkpoint", grant.lease_id, frame=90, total_frames=120)
    output = b"rendered-output" * 100
    pod_put(stack, grant.output_key, output)
    pod.report(job_id, "complete", grant.lease_id, output_key=grant.output_key, frames=120,
               size_bytes=len(output), gpu_seconds=4.0)

    sock.until("complete")
    kinds = [e["type"] for e in sock.events]
    assert kinds == ["snapshot", "started", "progress", "progress", "progress", "checkpoint", "complete"]
    seqs = [e["seq"] for e in sock.events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one apart: none missed, none repeated
    for event in sock.events:  # each carries the whole job as it is after the event
        assert JobEvent.model_validate(event).job.seq == event["seq"]
    assert [e["job"]["progress"] for e in sock.events if e["type"] == "progress"] == [25.0, 50.0, 75.0]
    assert sock.events[-1]["job"]["output_bytes"] == len(output) and sock.events[-1]["job"]["total_frames"] == 120
    sock.close()

    job = api.get(job_id)
    assert job.status == "complete" and job.progress == 100 and job.gpu_seconds == 4.0

    assert job_id in [j.job_id for j in api.active().finished_while_away]
    assert api.mark_seen([job_id]) == 1
    away = api.active()
    assert job_id not in [j.job_id for j in away.finished_while_away + away.active]

    assert api.download(job_id, tmp_path / "out.mp4").read_bytes() == output


def test_presigned_put_then_worker_sees_object(api):
    """Bytes PUT with the presigned URL reach R2: a job can be created on them (the Worker checked)."""
    key = api.upload(video_bytes(b"x" * 1000))
    assert api.create(overlay_job(key)).status == "pending"


def test_presigned_put_refuses_other_content_type_and_size(api):
    info = api.upload_grant("a.mp4", 100)
    assert httpx.put(info.upload_url, content=b"x" * 100, headers={"content-type": "text/plain"}).status_code == 403
    assert httpx.put(info.upload_url, content=b"x" * 99, headers=info.headers).status_code == 403
    tampered = info.upload_url.replace("X-Amz-Expires=", "X-Amz-Expires=9")
    assert httpx.put(tampered, content=b"x" * 100, headers=info.headers).status_code == 403
    assert httpx.put(info.upload_url, content=b"x" * 100, headers=info.headers).status_code == 200


def _put_parts(info, data: bytes) -> list[dict]:
    """Each part PUT to its presigned URL, as storage sees it: its part number and ETag."""
    parts, offset = [], 0
    for part in info.parts:
        put = httpx.put(part.url, content=data[offset:offset + part.size_bytes], timeout=60)
        assert put.status_code == 200, put.text
        offset += part.size_bytes
        parts.append({"part_number": part.part_number, "etag": put.headers["etag"]})
    return parts


def test_multipart_upload_in_three_parts_completed_out_of_order(api, stack):
    size = (32 << 20) + 1234  # 16 MiB parts: 16, 16 and the rest
    info = api.multipart_grant("big.mov", size, "video/quicktime")
    assert [p.size_bytes for p in info.parts] == [16 << 20, 16 << 20, 1234]
    data = video_bytes(bytes(range(256)) * (size // 256) + bytes(size % 256))[:size]
    parts = _put_parts(info, data)
    done = api.complete_multipart(info.video_key, info.upload_id, parts[::-1])
    assert done.size_bytes == size
    r2 = R2(r2_config(stack))
    assert r2.read(info.video_key) == data
    assert api.create(overlay_job(info.video_key)).status == "pending"


def test_multipart_upload_missing_a_part_is_refused(api, stack):
    info = api.multipart_grant("big.mov", (32 << 20) + 10, "video/quicktime")
    parts = _put_parts(info, bytes((32 << 20) + 10))
    with pytest.raises(ApiError) as refused:
        api.complete_multipart(info.video_key, info.upload_id, parts[:2])
    assert refused.value.status == 400 and refused.value.error == "multipart_failed", refused.value
    assert R2(r2_config(stack)).read(info.video_key) is None
    with pytest.raises(ApiError) as missing:
        api.create(overlay_job(info.video_key))
    assert missing.value.status == 404
