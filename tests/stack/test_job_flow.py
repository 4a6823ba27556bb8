"""Create -> queue -> pull -> claim -> progress over a real WebSocket -> complete -> recovery list."""

import httpx

from gpu_worker.storage import R2
from scripts.gpu_worker_proc import r2_config
from jobspec import ClaimGrant, JobEvent

from .conftest import Socket, take_message, video_bytes


def test_job_lifecycle_end_to_end(api, pod, queue):
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
    key = api.upload(video)
    created = api.create(key)
    assert created.status_code == 202, created.text
    job_id = created.json()["job_id"]
    assert created.json()["status"] == "pending"

    sock = Socket(created.json()["websocket_url"])
    snapshot = sock.next()
    assert snapshot["type"] == "snapshot" and snapshot["job"]["status"] == "pending"

    message = take_message(queue, job_id)
    assert message.body == {"job_id": job_id, "attempt": 1} and message.attempts == 1
    grant = pod.claim(job_id, ["libx264"])
    assert isinstance(grant, ClaimGrant), grant
    assert grant.spec["input_video_key"] == key and grant.output_key == f"videos/output/{job_id}/{grant.lease_id}.mp4"
    assert queue.ack([message.lease_id])["ackCount"] == 1

    for frame in (30, 60, 90):
        pod.report(job_id, "progress", grant.lease_id, frame=frame, total_frames=120, fps=30.0, eta_s=1.0)
    pod.report(job_id, "checkpoint", grant.lease_id, frame=90, total_frames=120, segments=3,
               manifest_key=f"checkpoints/{job_id}/manifest.json")
    output = b"rendered-output" * 100
    api_stack_put(api, grant.output_key, output)
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

    job = api.job(job_id)
    assert job["status"] == "complete" and job["progress"] == 100 and job["gpu_seconds"] == 4.0

    away = api.http.get("/api/exports/active").json()
    assert job_id in [j["job_id"] for j in away["finished_while_away"]]
    assert api.http.post("/api/exports/seen", json={"job_ids": [job_id]}).json()["marked"] == 1
    away = api.http.get("/api/exports/active").json()
    assert job_id not in [j["job_id"] for j in away["finished_while_away"] + away["active"]]

    download = api.http.get(f"/api/jobs/{job_id}/download").json()
    got = httpx.get(download["url"])
    assert got.status_code == 200 and got.content == output


def api_stack_put(api, key: str, data: bytes) -> None:
    """Store an object the way a pod does: the S3 API with the R2 credentials."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=api.stack.r2_s3_endpoint, region_name="auto",
                      aws_access_key_id=api.stack.vars["R2_ACCESS_KEY_ID"],
                      aws_secret_access_key=api.stack.vars["R2_SECRET_ACCESS_KEY"])
    s3.put_object(Bucket="gpu-export-videos", Key=key, Body=data, ContentType="video/mp4")


def test_presigned_put_then_worker_sees_object(api):
    """Bytes PUT with the presigned URL reach R2: a job can be created on them (the Worker checked)."""
    key = api.upload(video_bytes(b"x" * 1000))
    assert api.create(key).status_code == 202


def test_presigned_put_refuses_other_content_type_and_size(api):
    r = api.http.post("/api/videos/upload-url", json={"filename": "a.mp4", "content_type": "video/mp4",
                                                      "size_bytes": 100})
    info = r.json()
    assert httpx.put(info["upload_url"], content=b"x" * 100, headers={"content-type": "text/plain"}).status_code == 403
    assert httpx.put(info["upload_url"], content=b"x" * 99, headers=info["headers"]).status_code == 403
    tampered = info["upload_url"].replace("X-Amz-Expires=", "X-Amz-Expires=9")
    assert httpx.put(tampered, content=b"x" * 100, headers=info["headers"]).status_code == 403
    assert httpx.put(info["upload_url"], content=b"x" * 100, headers=info["headers"]).status_code == 200


def _put_parts(info: dict, data: bytes) -> list[dict]:
    parts, offset = [], 0
    for part in info["parts"]:
        put = httpx.put(part["url"], content=data[offset:offset + part["size_bytes"]], timeout=60)
        assert put.status_code == 200, put.text
        offset += part["size_bytes"]
        parts.append({"part_number": part["part_number"], "etag": put.headers["etag"]})
    return parts


def _multipart(api, size: int) -> dict:
    r = api.http.post("/api/videos/multipart", json={"filename": "big.mov", "content_type": "video/quicktime",
                                                     "size_bytes": size})
    assert r.status_code == 200, r.text
    return r.json()


def test_multipart_upload_in_three_parts_completed_out_of_order(api, stack):
    size = (32 << 20) + 1234  # 16 MiB parts: 16, 16 and the rest
    info = _multipart(api, size)
    assert [p["size_bytes"] for p in info["parts"]] == [16 << 20, 16 << 20, 1234]
    data = video_bytes(bytes(range(256)) * (size // 256) + bytes(size % 256))[:size]
    parts = _put_parts(info, data)
    done = api.http.post("/api/videos/multipart/complete",
                         json={"key": info["video_key"], "upload_id": info["upload_id"], "parts": parts[::-1]})
    assert done.status_code == 200, done.text
    assert done.json()["size_bytes"] == size
    r2 = R2(r2_config(stack))
    assert r2.read(info["video_key"]) == data
    assert api.create(info["video_key"]).status_code == 202


def test_multipart_upload_missing_a_part_is_refused(api, stack):
    info = _multipart(api, (32 << 20) + 10)
    parts = _put_parts(info, bytes((32 << 20) + 10))
    done = api.http.post("/api/videos/multipart/complete",
                         json={"key": info["video_key"], "upload_id": info["upload_id"], "parts": parts[:2]})
    assert done.status_code == 400 and done.json()["error"] == "multipart_failed", done.text
    assert R2(r2_config(stack)).read(info["video_key"]) is None
    assert api.create(info["video_key"]).status_code == 404
