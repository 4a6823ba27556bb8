"""Direct browser <-> R2 transfers with presigned URLs (the bytes never pass through the Worker).

A PUT URL signs the content type and the exact content length, so R2 itself refuses another type or
size; the declared size is capped before any URL is issued. Large files use multipart: the Worker
creates the upload, presigns one URL per part (each with its exact length) and completes it.
"""

from __future__ import annotations

import math
import re
import secrets
from datetime import datetime, timezone
from typing import get_args

from controlplane import bindings, limits, retention, sniff
from controlplane.http import Call, HttpError, validate
from controlplane.sigv4 import expires_at, presign
from jobspec import (UPLOAD_PREFIX, MultipartAbortRequest, MultipartCompleteRequest, UploadRequest, VideoType,
                     VideoViewRequest)

S3_SINGLE_PUT_MAX = 5 << 30
MIN_PART = 5 << 20  # S3's smallest non-final part
MAX_PARTS = 10000
DEFAULT_PART = 16 << 20
VIDEO_TYPES = get_args(VideoType)
DECLARED_SIZE = "declared-size"  # custom metadata of a multipart upload: the size it was planned for


def s3_endpoint(call: Call) -> str:
    """R2's S3 endpoint, from configuration only (a URL made from the request's Host header would let
    the client choose where the signed URLs it hands on point). Production:
    https://<account>.r2.cloudflarestorage.com; local dev: wrangler's S3 shim, set by scripts/localstack.py."""
    if not call.settings.s3_endpoint:
        raise HttpError(503, "storage_unconfigured", "R2_S3_ENDPOINT is not set: no presigned URL can be made")
    return call.settings.s3_endpoint.rstrip("/")


def _now(call: Call) -> datetime:
    return datetime.fromtimestamp(call.now, tz=timezone.utc)


def _sign(call: Call, method: str, key: str, **kw) -> str:
    return presign(call.settings.s3, method, s3_endpoint(call), call.settings.bucket_name, key,
                   expires_s=call.settings.presign_ttl_s, now=_now(call), **kw)


def safe_filename(name: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name.rsplit("/", 1)[-1]).strip("._") or "video"
    return base[-128:]


async def _checked(call: Call, user_id: str, limit: int) -> tuple[UploadRequest, str]:
    data = call.json()
    if isinstance(data, dict) and data.get("content_type", VIDEO_TYPES[0]) not in VIDEO_TYPES:
        raise HttpError(415, "unsupported_type",
                        f"{data['content_type']} is not accepted: upload a video ({', '.join(VIDEO_TYPES)})")
    req = validate(UploadRequest, data)
    if req.size_bytes > limit:
        raise HttpError(413, "too_large", f"file is {req.size_bytes} bytes; the limit is {limit} bytes")
    await limits.spend_upload_bytes(call, user_id, req.size_bytes)
    key = f"{UPLOAD_PREFIX}{user_id}/{secrets.token_hex(8)}/{safe_filename(req.filename)}"
    return req, key


def _owned_key(user_id: str, key: str) -> str:
    if not key.startswith(f"{UPLOAD_PREFIX}{user_id}/"):
        raise HttpError(404, "not_found", "no such upload")
    return key


async def upload_url(call: Call, user_id: str):
    req, key = await _checked(call, user_id, min(call.settings.max_upload_bytes, S3_SINGLE_PUT_MAX))
    headers = {"content-type": req.content_type, "content-length": str(req.size_bytes)}
    url = _sign(call, "PUT", key, signed_headers=headers)
    return 200, {"upload_url": url, "method": "PUT", "headers": {"content-type": req.content_type},
                 "video_key": key, "expires_at": expires_at(_now(call), call.settings.presign_ttl_s)}


def part_plan(size: int, wanted: int = DEFAULT_PART) -> list[tuple[int, int]]:
    """(part number, length) for each part: parts of at least 5 MiB, at most 10,000 of them."""
    part = max(MIN_PART, wanted, math.ceil(size / MAX_PARTS))
    count = math.ceil(size / part)
    return [(n + 1, min(part, size - n * part)) for n in range(count)]


async def multipart_create(call: Call, user_id: str):
    req, key = await _checked(call, user_id, call.settings.max_upload_bytes)
    upload_id = await bindings.r2_create_multipart(call.env.VIDEOS, key, req.content_type,
                                                   {DECLARED_SIZE: str(req.size_bytes)})
    await retention.track_multipart(bindings.D1(call.env.DB), user_id, key, upload_id, call.now)
    parts = [{"part_number": n, "size_bytes": length,
              "url": _sign(call, "PUT", key, query={"partNumber": str(n), "uploadId": upload_id},
                           signed_headers={"content-length": str(length)})}
             for n, length in part_plan(req.size_bytes)]
    return 200, {"video_key": key, "upload_id": upload_id, "parts": parts,
                 "expires_at": expires_at(_now(call), call.settings.presign_ttl_s)}


async def multipart_complete(call: Call, user_id: str):
    req = validate(MultipartCompleteRequest, call.json())
    key = _owned_key(user_id, req.key)
    # S3 returns ETags quoted; the R2 binding wants them bare.
    parts = [{"partNumber": p.part_number, "etag": p.etag.strip('"')}
             for p in sorted(req.parts, key=lambda p: p.part_number)]
    try:
        size, metadata = await bindings.r2_complete_multipart(call.env.VIDEOS, key, req.upload_id, parts)
    except Exception as e:
        raise HttpError(400, "multipart_failed", f"could not complete the upload: {e}") from None
    await retention.untrack_multipart(bindings.D1(call.env.DB), req.upload_id)
    declared = int(metadata.get(DECLARED_SIZE, size))
    if size != declared:  # storage completes whatever subset of parts it is given
        await bindings.r2_delete(call.env.VIDEOS, [key])
        raise HttpError(400, "multipart_failed", f"the upload is incomplete: {size} of its {declared} bytes arrived "
                                                 f"(list every part); it was discarded, upload the file again")
    try:
        await check_video(call, key, size)
    except HttpError:
        await bindings.r2_delete(call.env.VIDEOS, [key])  # nothing is kept that no job could use
        raise
    return 200, {"video_key": key, "size_bytes": size}


async def check_video(call: Call, key: str, size: int) -> None:
    """422 unless the object (of `size` bytes) starts like a video container the pods read (sniff.py)."""
    head = await bindings.r2_first_bytes(call.env.VIDEOS, key, min(size, sniff.HEAD_BYTES))
    if sniff.container_of(head) is None:
        raise HttpError(422, "input_not_video", f"input {key} is not a video: it reads as {sniff.describe(head)}; "
                        "upload an MP4, MOV, MKV, WebM, AVI, MPEG-TS, MPEG-PS, FLV, WMV or Ogg file")


async def multipart_abort(call: Call, user_id: str):
    req = validate(MultipartAbortRequest, call.json())
    key = _owned_key(user_id, req.key)  # outside the try: another user's key is a 404, as everywhere
    try:
        await bindings.r2_abort_multipart(call.env.VIDEOS, key, req.upload_id)
    except Exception as e:
        raise HttpError(400, "multipart_failed", f"could not abort the upload: {e}") from None
    await retention.untrack_multipart(bindings.D1(call.env.DB), req.upload_id)
    return 200, {"aborted": True}


async def view_url(call: Call, user_id: str):
    """A presigned GET of one of the user's uploads, for the page's video player (inline, byte ranges)."""
    key = _owned_key(user_id, validate(VideoViewRequest, call.json()).key)
    size = await bindings.r2_size(call.env.VIDEOS, key)
    if size is None:
        raise HttpError(404, "not_found", "no such upload")
    return 200, {"url": _sign(call, "GET", key), "expires_at": expires_at(_now(call), call.settings.presign_ttl_s),
                 "size_bytes": size}


def presign_download(call: Call, key: str, filename: str) -> tuple[str, str]:
    url = _sign(call, "GET", key, query={"response-content-disposition": f'attachment; filename="{filename}"'})
    return url, expires_at(_now(call), call.settings.presign_ttl_s)
