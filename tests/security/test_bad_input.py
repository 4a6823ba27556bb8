"""Bad input, table-driven (beyond tests/stack/test_api_contract.py): each case is a clear 4xx with a
JSON {"error", "reason"} body, and nothing is half-written: the user's job list (D1) and the bucket
(R2) are unchanged. Inputs that are not videos are accepted as uploads and fail their job with a
reason (no attempt used) once a GPU worker looks at them."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import httpx
import pytest

from scripts.gpu_worker_proc import GpuWorker
from tests.api_helpers import refusal, video_bytes

from .conftest import is_error, leave_only, r2_keys

KF = {"t": 0, "x": 0.5, "y": 0.5, "rx": 0.1, "ry": 0.1}


def overlay(key, keyframes=None, **extra):
    return {"type": "overlay", "input_video_key": key,
            "params": {"highlight_regions": [{"keyframes": keyframes or [KF]}]}, **extra}


def framing(key, **params):
    return {"type": "framing", "input_video_key": key,
            "params": {"crop_keyframes": [{"t": 0, "x": 0, "y": 0, "w": 0.5, "h": 1}], **params}}


def raw(text):
    return lambda key, user: text.replace("KEY", key)


JOB_CASES = [
    # malformed JSON and wrong shapes
    ("truncated", raw('{"type": "overlay", "input_video_key": "KEY"'), 400, "malformed_json", "not valid JSON"),
    ("empty", raw(""), 400, "malformed_json", "JSON object"),
    ("array", raw("[1, 2]"), 422, "invalid_request", "valid"),
    ("null", raw("null"), 422, "invalid_request", "valid"),
    ("string", raw('"overlay"'), 422, "invalid_request", "valid"),
    ("not utf-8", lambda key, user: b'{"type": "\xff\xfe"}', 422, "invalid_request", "expected tags"),
    ("type is a number", lambda k, u: {**overlay(k), "type": 5}, 422, "invalid_request", "type"),
    ("params is a list", lambda k, u: {**overlay(k), "params": []}, 422, "invalid_request", "params"),
    ("x is a word", lambda k, u: overlay(k, [{**KF, "x": "left"}]), 422, "invalid_request", "x"),
    ("keyframes is an object", lambda k, u: {**overlay(k), "params": {"highlight_regions": [{"keyframes": {}}]}},
     422, "invalid_request", "keyframes"),
    # non-finite and negative numbers (NaN and Infinity are what Python's and JS's JSON writers emit)
    ("NaN time", raw('{"type": "overlay", "input_video_key": "KEY", "params": {"highlight_regions": '
                     '[{"keyframes": [{"t": NaN, "x": 0.5, "y": 0.5, "rx": 0.1, "ry": 0.1}]}]}}'),
     422, "invalid_request", "finite"),
    ("Infinity x", raw('{"type": "overlay", "input_video_key": "KEY", "params": {"highlight_regions": '
                       '[{"keyframes": [{"t": 0, "x": Infinity, "y": 0.5, "rx": 0.1, "ry": 0.1}]}]}}'),
     422, "invalid_request", "finite"),
    ("-Infinity crop", raw('{"type": "framing", "input_video_key": "KEY", "params": {"crop_keyframes": '
                           '[{"t": 0, "x": -Infinity, "y": 0, "w": 0.5, "h": 1}]}}'), 422, "invalid_request", "finite"),
    ("NaN dim", raw('{"type": "overlay", "input_video_key": "KEY", "params": {"highlight_regions": '
                    '[{"dim": NaN, "keyframes": [{"t": 0, "x": 0.5, "y": 0.5, "rx": 0.1, "ry": 0.1}]}]}}'),
     422, "invalid_request", "finite"),
    ("negative time", lambda k, u: overlay(k, [{**KF, "t": -0.5}]), 422, "invalid_request", "greater than or equal"),
    ("zero radius", lambda k, u: overlay(k, [{**KF, "rx": 0}]), 422, "invalid_request", "greater than 0"),
    ("clip ends before it starts", lambda k, u: {"type": "multi_clip", "params": {"clips": [
        {"input_video_key": k, "start_s": 2, "end_s": 1}]}}, 422, "invalid_request", "must be after"),
    ("odd output width", lambda k, u: framing(k, output_width=1081), 422, "invalid_request", "even"),
    ("huge output", lambda k, u: framing(k, output_width=8000), 422, "invalid_request", "less than or equal"),
    ("project id too big for D1", lambda k, u: overlay(k, project_id=2**53), 422, "invalid_request",
     "less than or equal"),
    ("negative project id", lambda k, u: overlay(k, project_id=-1), 422, "invalid_request", "greater than or equal"),
    # huge arrays
    ("17 regions", lambda k, u: {**overlay(k), "params": {"highlight_regions": [{"keyframes": [KF]}] * 17}},
     422, "invalid_request", "at most 16"),
    ("51 clips", lambda k, u: {"type": "multi_clip", "params": {"clips": [{"input_video_key": k}] * 51}},
     422, "invalid_request", "at most 50"),
    ("no clips", lambda k, u: {"type": "multi_clip", "params": {"clips": []}}, 422, "invalid_request", "at least 1"),
    ("2001 crops", lambda k, u: framing(k, crop_keyframes=[{"t": i, "x": 0, "y": 0, "w": 0.5, "h": 1}
                                                           for i in range(2001)]), 422, "invalid_request", "at most 2000"),
    ("body over 1 MiB", lambda k, u: {**overlay(k), "pad": "x" * (1 << 20)}, 413, "too_large", "too large"),
    # keys that are not the user's uploads
    ("traversal in the key", lambda k, u: overlay(k.rsplit("/", 1)[0] + "/../../../etc/passwd"),
     422, "invalid_request", "uploaded video key"),
    ("dot-dot file name", lambda k, u: overlay(k.rsplit("/", 1)[0] + "/.."), 422, "invalid_request",
     "uploaded video key"),
    ("encoded traversal", lambda k, u: overlay(k.rsplit("/", 2)[0] + "/%2e%2e/%2e%2e%2fx"), 422, "invalid_request",
     "uploaded video key"),
    ("absolute path", lambda k, u: overlay("/etc/passwd"), 422, "invalid_request", "uploaded video key"),
    ("an output as input", lambda k, u: overlay("videos/output/0123456789abcdef.mp4"), 422, "invalid_request",
     "uploaded video key"),
    ("a checkpoint as input", lambda k, u: overlay("checkpoints/j1/seg_00000.mp4"), 422, "invalid_request",
     "uploaded video key"),
    ("another user's prefix", lambda k, u: overlay("videos/raw/usr_0000000000000000/abc/a.mp4"), 404,
     "input_not_found", "does not exist"),
]


@pytest.fixture
def key(alice):
    return alice.upload(video_bytes(bytes(300)))


def unchanged(alice, r2):
    jobs, keys = alice.list(limit=100).jobs, r2_keys(r2)

    def check():
        assert alice.list(limit=100).jobs == jobs
        assert r2_keys(r2) == keys
    return check


@pytest.mark.parametrize("case", JOB_CASES, ids=[c[0] for c in JOB_CASES])
def test_bad_job_requests_are_refused_and_write_nothing(case, alice, key, r2):
    name, body, status, code, reason = case
    check = unchanged(alice, r2)
    data = body(key, alice)
    content = data if isinstance(data, (str, bytes)) else json.dumps(data)  # as it is: `create` would check it
    r = refusal(alice.request, "POST", "/api/jobs", content=content,
                headers={"Idempotency-Key": f"bad-{name}"}).response
    assert is_error(r, status, code), r.text[:300]
    assert reason in r.json()["reason"], r.json()["reason"]
    check()


QUERY_CASES = [
    ({"limit": "0"}, 400, "bad_limit"), ({"limit": "-1"}, 400, "bad_limit"), ({"limit": "101"}, 400, "bad_limit"),
    ({"limit": "1.5"}, 400, "bad_limit"), ({"limit": "NaN"}, 400, "bad_limit"), ({"limit": "1e3"}, 400, "bad_limit"),
    ({"status": "pending,bogus"}, 400, "bad_status"), ({"status": "PENDING"}, 400, "bad_status"),
    ({"cursor": "!!"}, 400, "bad_cursor"), ({"cursor": "bm90IGEgY3Vyc29y"}, 400, "bad_cursor"),
    ({"cursor": "é" * 300}, 400, "bad_cursor"),
]


@pytest.mark.parametrize("params,status,code", QUERY_CASES)
def test_bad_list_queries_are_refused(params, status, code, alice):
    r = refusal(alice.request, "GET", "/api/jobs", params=params).response
    assert is_error(r, status, code), (params, r.text)


def test_repeated_filters_and_long_seen_lists_are_served(alice):
    """Both were 500s: more bound parameters than D1 takes."""
    alice.list(["pending", "error"] * 100)
    assert alice.request("POST", "/api/exports/seen", json_body={"job_ids": [f"job{i}" for i in range(200)]}) == {
        "marked": 0}


OTHER_CASES = [
    ("/api/exports/seen", {}, 422), ("/api/exports/seen", {"job_ids": []}, 422),
    ("/api/exports/seen", {"job_ids": [1, 2]}, 422), ("/api/exports/seen", {"job_ids": ["j"] * 201}, 422),
    ("/api/exports/seen", [1], 422),
    ("/api/videos/upload-url", {"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": -1}, 422),
    ("/api/videos/upload-url", {"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 1.5}, 422),
    ("/api/videos/upload-url", {"filename": "", "content_type": "video/mp4", "size_bytes": 10}, 422),
    ("/api/videos/upload-url", {"filename": "a" * 256, "content_type": "video/mp4", "size_bytes": 10}, 422),
    ("/api/videos/upload-url", {"filename": "a.mp4", "content_type": "video/mp4; x=y", "size_bytes": 10}, 415),
    ("/api/videos/upload-url", {"filename": "a.html", "content_type": "text/html", "size_bytes": 10}, 415),
    ("/api/videos/upload-url", {"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 10, "key": "x"}, 422),
    ("/api/videos/multipart/complete", {"key": "KEY", "upload_id": "u", "parts": []}, 422),
    ("/api/videos/multipart/complete", {"key": "KEY", "upload_id": "u", "parts": [{"part_number": 0, "etag": "e"}]},
     422),
    ("/api/videos/multipart/complete", {"key": "KEY", "upload_id": "u",
                                        "parts": [{"part_number": 10001, "etag": "e"}]}, 422),
    ("/api/videos/multipart/complete", {"key": "KEY", "upload_id": "no-such-upload",
                                        "parts": [{"part_number": 1, "etag": "e"}]}, 400),
    ("/api/videos/multipart/abort", {"key": "KEY", "upload_id": ""}, 422),
    ("/api/videos/multipart/abort", {"key": "KEY/../../x", "upload_id": "u"}, 422),
    ("/api/videos/multipart/complete", {"key": "KEY/../x.mp4", "upload_id": "u",
                                        "parts": [{"part_number": 1, "etag": "e"}]}, 422),
    ("/api/videos/multipart/abort", {"key": "videos/raw/../../etc/passwd", "upload_id": "u"}, 422),
]


@pytest.mark.parametrize("path,body,status", OTHER_CASES)
def test_bad_upload_and_seen_requests_are_refused(path, body, status, alice, key, r2):
    check = unchanged(alice, r2)
    body = json.loads(json.dumps(body).replace("KEY", key))
    r = refusal(alice.request, "POST", path, json_body=body).response
    assert is_error(r, status), (path, body, r.text[:300])
    check()


@pytest.mark.parametrize("filename", ["../../x", "../../../etc/passwd", "..", "/", "a/../../b.mp4", "..\\..\\c.mp4",
                                      "%2e%2e%2fx", "\u202egnp.mp4", "con.mp4\u0000.txt"])
def test_upload_file_names_cannot_leave_the_users_folder(filename, alice, r2):
    grant = alice.upload_grant(filename, 10)
    key = grant.video_key
    user_id = alice.token.split(".")[1]
    prefix, upload_id, name = key.rsplit("/", 2)
    assert prefix == f"videos/raw/{user_id}" and ".." not in key and name and not name.startswith(".")
    assert all(c.isalnum() or c in "._-" for c in name), name
    put = httpx.put(grant.upload_url, content=b"x" * 10, headers=grant.headers)
    assert put.status_code == 200
    assert key in r2_keys(r2)


# ---------------------------------------------------------------- inputs that are not videos


def clip_bytes(tmp_path, *args: str) -> bytes:
    from gpu_worker.media import run_ffmpeg

    out = tmp_path / "clip.mp4"
    run_ffmpeg(*args, str(out))
    return out.read_bytes()


def test_inputs_that_are_not_videos_fail_their_job_with_a_reason(alice, stack, queue, tmp_path):
    video = clip_bytes(tmp_path, "-f", "lavfi", "-i", "testsrc2=size=256x144:rate=30", "-t", "2",
                       "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    audio = clip_bytes(tmp_path, "-f", "lavfi", "-i", "sine", "-t", "2", "-c:a", "aac", "-f", "mp4")
    no_frames = clip_bytes(tmp_path, "-f", "lavfi", "-i", "testsrc2=size=256x144:rate=30", "-frames:v", "0",
                           "-c:v", "libx264", "-pix_fmt", "yuv420p")
    inputs = {"truncated": video[: len(video) // 2], "audio only": audio, "header only": video[:64],
              "zero frames": no_frames}
    jobs = {name: alice.create(overlay(alice.upload(data))).job_id for name, data in inputs.items()}

    leave_only(queue, jobs.values())
    worker = GpuWorker(stack, tmp_path / "worker", "pod-bad-input")
    try:
        deadline = time.monotonic() + 120
        while any(not alice.get(j).terminal for j in jobs.values()):
            assert worker.proc.poll() is None, worker.log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, {n: alice.get(j).status for n, j in jobs.items()}
            time.sleep(0.5)
    finally:
        worker.signal(signal.SIGTERM)
        try:
            worker.proc.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    for name, job_id in jobs.items():
        job = alice.get(job_id)
        assert job.status == "error" and job.attempts == 0, (name, job)
        assert "input" in job.error or "video" in job.error, (name, job.error)
    assert refusal(alice.download_url, jobs["truncated"]).status == 409


NOT_VIDEOS = {"text": b"this is not a video\n" * 50, "a PNG image": b"\x89PNG\r\n\x1a\n" + bytes(200),
              "a RIFF WAVE file": b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(200), "unrecognised data": bytes(300)}


@pytest.mark.parametrize("kind", NOT_VIDEOS)
def test_what_is_not_a_video_container_is_refused_before_a_job_is_queued(kind, alice, r2):
    key = alice.upload(NOT_VIDEOS[kind])
    check = unchanged(alice, r2)
    r = refusal(alice.create, overlay(key)).response
    assert is_error(r, 422, "input_not_video"), r.text
    assert f"reads as {kind}" in r.json()["reason"], r.json()["reason"]
    check()


def test_a_multipart_upload_that_is_not_a_video_is_refused_and_removed(alice, r2):
    size = 5 << 20
    info = alice.multipart_grant("notes.mp4", size)
    etag = httpx.put(info.parts[0].url, content=b"plain text\n" * (size // 11) + b"x" * (size % 11),
                     timeout=60).headers["etag"]
    done = refusal(alice.complete_multipart, info.video_key, info.upload_id,
                   [{"part_number": 1, "etag": etag}]).response
    assert is_error(done, 422, "input_not_video") and "reads as text" in done.json()["reason"], done.text
    assert info.video_key not in r2_keys(r2)
