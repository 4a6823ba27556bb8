"""AsyncClient: the public API of the export service, typed with the jobspec models.

    async with AsyncClient("https://export.example.com", token) as api:
        key = await api.upload("clip.mp4")
        created = await api.create({"type": "overlay", "input_video_key": key, "params": {...}})
        job = await api.wait(created.job_id, on_event=print)
        await api.download(job.job_id, "out.mp4")

Uploads and downloads go straight to storage with the presigned URLs the API grants. `wait` follows
the job's WebSocket, reconnecting with a fresh ticket and polling while the socket is down.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import os
import time
from contextlib import aclosing
from pathlib import Path
from typing import AsyncIterator, Callable, Optional, Union

import httpx
import websockets
from websockets.asyncio.client import connect as ws_connect

from jobspec import (
    CREATE_JOB,
    Aborted,
    Account,
    ActiveExports,
    CreatedJob,
    DownloadGrant,
    Health,
    JobEvent,
    JobPage,
    JobView,
    Marked,
    MultipartGrant,
    NewUser,
    ServiceConfig,
    SocketGrant,
    UploadDone,
    UploadGrant,
    WebhookDeliveries,
    WebhookEvent,
    WebhookSecret,
)

from .errors import ApiError, TimedOut, Unavailable

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)
OnEvent = Callable[[JobEvent], None]
Source = Union[str, os.PathLike, bytes]

CHUNK = 1 << 20
PART_CONCURRENCY = 4
RETRY_PAUSE_S = 0.5
MAX_RECONNECT_DELAY_S = 30.0


class AsyncClient:
    def __init__(self, base_url: str, token: Optional[str] = None, *, timeout_s: float = 30.0,
                 retry_for_s: float = 0.0, multipart_threshold: Optional[int] = None):
        """`retry_for_s`: how long a call is retried while the API cannot be reached or answers 5xx
        (0: not at all). Creating a job with an idempotency key is safe to retry. Uploads over
        `multipart_threshold` bytes go up in parts (default: the deployment's, from /api/config)."""
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retry_for_s = retry_for_s
        self.multipart_threshold = multipart_threshold
        self._api = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)
        self._storage = httpx.AsyncClient(timeout=timeout_s)  # presigned URLs: no credentials of ours

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._api.aclose()
        await self._storage.aclose()

    # ------------------------------------------------------------------ calls

    async def request(self, method: str, path: str, *, json_body=None, content: Union[bytes, str, None] = None,
                      params=None, headers=None) -> dict:
        """One API call: its JSON answer, or ApiError with the API's reason. The body is `json_body` as
        JSON, or `content` sent as it is."""
        auth = {"authorization": f"Bearer {self.token}"} if self.token else {}
        deadline = time.monotonic() + self.retry_for_s
        while True:
            try:
                r = await self._api.request(method, path, json=json_body, content=content, params=params,
                                            headers={**auth, **(headers or {})})
                if r.status_code < 500 or time.monotonic() >= deadline:
                    break
            except httpx.TransportError as e:
                if time.monotonic() >= deadline:
                    raise Unavailable(f"{method} {path}: {type(e).__name__}: {e}") from None
            await asyncio.sleep(RETRY_PAUSE_S)
        if r.status_code >= 400:
            raise api_error(r)
        return r.json()

    # ------------------------------------------------------------------ accounts

    async def sign_up_anonymous(self) -> NewUser:
        """A new anonymous account (local and demo deployments only); the client uses its token."""
        user = NewUser.model_validate(await self.request("POST", "/api/auth/anonymous"))
        self.token = user.token
        return user

    async def whoami(self) -> Account:
        """The account the client's token signs in as."""
        return Account.model_validate(await self.request("GET", "/api/auth/me"))

    # ------------------------------------------------------------------ uploads

    async def upload(self, source: Source, *, filename: Optional[str] = None, content_type: Optional[str] = None,
                     progress: Optional[Progress] = None) -> str:
        """Upload a video (a path or bytes) straight to storage; returns its key for a job.
        Files over `multipart_threshold` go up in parts, several at a time."""
        blob = _Blob(source, filename)
        if self.multipart_threshold is None:
            self.multipart_threshold = (await self.config()).multipart_threshold_bytes
        content_type = content_type or mimetypes.guess_type(blob.name)[0] or "video/mp4"
        meter = _Meter(blob.size, progress)
        if blob.size > self.multipart_threshold:
            return await self._upload_parts(blob, content_type, meter)
        grant = await self.upload_grant(blob.name, blob.size, content_type)
        await self._put(grant.upload_url, blob, 0, blob.size, grant.headers, meter)
        return grant.video_key

    async def _upload_parts(self, blob: "_Blob", content_type: str, meter: "_Meter") -> str:
        plan = await self.multipart_grant(blob.name, blob.size, content_type)
        slots = asyncio.Semaphore(PART_CONCURRENCY)
        offsets = [sum(p.size_bytes for p in plan.parts[:i]) for i in range(len(plan.parts))]

        async def send(part, offset) -> dict:
            async with slots:
                r = await self._put(part.url, blob, offset, part.size_bytes, {}, meter)
                return {"part_number": part.part_number, "etag": r.headers["etag"]}

        try:
            parts = await asyncio.gather(*(send(p, o) for p, o in zip(plan.parts, offsets)))
            done = await self.complete_multipart(plan.video_key, plan.upload_id, parts)
        except BaseException:
            await asyncio.shield(self._abort_quietly(plan))
            raise
        return done.video_key

    async def _abort_quietly(self, plan: MultipartGrant) -> None:
        try:
            await self.abort_multipart(plan.video_key, plan.upload_id)
        except (ApiError, Unavailable, httpx.HTTPError):
            pass  # the upload expires on its own; the original error is what matters

    async def _put(self, url: str, blob: "_Blob", offset: int, length: int, headers: dict,
                   meter: "_Meter") -> httpx.Response:
        r = await self._storage.put(url, content=blob.chunks(offset, length, meter),
                                    headers={**headers, "content-length": str(length)})
        if r.status_code >= 300:
            raise ApiError(r.status_code, "storage_refused", f"storage refused the upload: {r.text[:300]}", response=r)
        return r

    # Uploads step by step, for callers that send the bytes themselves; playing one back.

    async def upload_grant(self, filename: str, size_bytes: int, content_type: str = "video/mp4") -> UploadGrant:
        """A presigned PUT for one file of exactly this size and type."""
        request = {"filename": filename, "content_type": content_type, "size_bytes": size_bytes}
        return UploadGrant.model_validate(await self.request("POST", "/api/videos/upload-url", json_body=request))

    async def multipart_grant(self, filename: str, size_bytes: int, content_type: str = "video/mp4") -> MultipartGrant:
        """A multipart upload: one presigned PUT per part; complete it with every part's ETag."""
        request = {"filename": filename, "content_type": content_type, "size_bytes": size_bytes}
        return MultipartGrant.model_validate(await self.request("POST", "/api/videos/multipart", json_body=request))

    async def complete_multipart(self, video_key: str, upload_id: str, parts: list[dict]) -> UploadDone:
        """`parts`: {"part_number", "etag"} of each part, in any order."""
        body = {"key": video_key, "upload_id": upload_id, "parts": parts}
        return UploadDone.model_validate(await self.request("POST", "/api/videos/multipart/complete", json_body=body))

    async def abort_multipart(self, video_key: str, upload_id: str) -> Aborted:
        body = {"key": video_key, "upload_id": upload_id}
        return Aborted.model_validate(await self.request("POST", "/api/videos/multipart/abort", json_body=body))

    async def view_url(self, video_key: str) -> DownloadGrant:
        """A presigned GET of one of your uploads, to play it (byte ranges, inline)."""
        return DownloadGrant.model_validate(await self.request("POST", "/api/videos/view-url",
                                                               json_body={"key": video_key}))

    # ------------------------------------------------------------------ jobs

    async def create(self, spec, *, idempotency_key: Optional[str] = None, webhook_url: Optional[str] = None,
                     webhook_events: Optional[list[WebhookEvent]] = None) -> CreatedJob:
        """Submit a job (a jobspec model or its dict; checked here before it is sent). With `webhook_url`,
        its events (by default completed, failed and cancelled) are also sent there, signed with your
        webhook secret (`new_webhook_secret`; check deliveries with `verify_webhook`)."""
        hook = {k: v for k, v in (("webhook_url", webhook_url), ("webhook_events", webhook_events)) if v is not None}
        request = CREATE_JOB.validate_python({**_plain(spec), **hook})
        body = CREATE_JOB.dump_python(request, mode="json", exclude_unset=True)
        headers = {"idempotency-key": idempotency_key} if idempotency_key else None
        return CreatedJob.model_validate(await self.request("POST", "/api/jobs", json_body=body, headers=headers))

    async def get(self, job_id: str) -> JobView:
        return JobView.model_validate(await self.request("GET", f"/api/jobs/{job_id}"))

    async def list(self, status: Optional[list[str]] = None, limit: int = 20, cursor: Optional[str] = None) -> JobPage:
        params = {"limit": limit, **({"status": ",".join(status)} if status else {}),
                  **({"cursor": cursor} if cursor else {})}
        return JobPage.model_validate(await self.request("GET", "/api/jobs", params=params))

    async def jobs(self, status: Optional[list[str]] = None, page_size: int = 100) -> AsyncIterator[JobView]:
        """Every job of the user, newest first, page by page."""
        cursor = None
        while True:
            page = await self.list(status, page_size, cursor)
            for job in page.jobs:
                yield job
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def cancel(self, job_id: str) -> JobView:
        return JobView.model_validate(await self.request("POST", f"/api/jobs/{job_id}/cancel"))

    async def retry(self, job_id: str) -> JobView:
        return JobView.model_validate(await self.request("POST", f"/api/jobs/{job_id}/retry"))

    async def active(self) -> ActiveExports:
        """Running jobs, and finished ones not yet marked seen ("completed while you were away")."""
        return ActiveExports.model_validate(await self.request("GET", "/api/exports/active"))

    async def mark_seen(self, job_ids: list[str]) -> int:
        answer = await self.request("POST", "/api/exports/seen", json_body={"job_ids": job_ids})
        return Marked.model_validate(answer).marked

    async def new_webhook_secret(self) -> WebhookSecret:
        """A new secret that signs your webhooks, shown once; the previous one keeps signing for a day."""
        return WebhookSecret.model_validate(await self.request("POST", "/api/webhooks/secret"))

    async def webhook_deliveries(self, job_id: str) -> WebhookDeliveries:
        """The job's webhook deliveries, each with every attempt."""
        return WebhookDeliveries.model_validate(await self.request("GET", f"/api/jobs/{job_id}/webhooks"))

    async def config(self) -> ServiceConfig:
        return ServiceConfig.model_validate(await self.request("GET", "/api/config"))

    async def health(self) -> Health:
        return Health.model_validate(await self.request("GET", "/health"))

    # ------------------------------------------------------------------ downloads

    async def download_url(self, job_id: str) -> DownloadGrant:
        return DownloadGrant.model_validate(await self.request("GET", f"/api/jobs/{job_id}/download"))

    async def download(self, job_id: str, dest: Union[str, os.PathLike], progress: Optional[Progress] = None) -> Path:
        """The export, written to `dest` whole or not at all (through a .part file)."""
        grant = await self.download_url(job_id)
        dest = Path(dest)
        partial = dest.with_name(dest.name + ".part")
        try:
            async with self._storage.stream("GET", grant.url) as r:
                if r.status_code != 200:
                    await r.aread()
                    raise ApiError(r.status_code, "storage_refused", f"storage refused the download: {r.status_code}",
                                   response=r)
                meter = _Meter(int(r.headers.get("content-length") or grant.size_bytes or 0), progress)
                with open(partial, "wb") as f:
                    async for chunk in r.aiter_bytes(CHUNK):
                        f.write(chunk)
                        meter.add(len(chunk))
            partial.replace(dest)
        finally:
            partial.unlink(missing_ok=True)
        return dest

    # ------------------------------------------------------------------ live events

    async def socket_url(self, job_id: str) -> SocketGrant:
        return SocketGrant.model_validate(await self.request("POST", f"/api/jobs/{job_id}/ws-ticket"))

    async def events(self, job_id: str) -> AsyncIterator[JobEvent]:
        """The job's events over one WebSocket connection (a snapshot first); ends when it closes."""
        grant = await self.socket_url(job_id)
        async with ws_connect(grant.websocket_url, open_timeout=20, close_timeout=2) as ws:
            async for message in ws:
                data = json.loads(message)
                if "job" in data:  # not a pong or an error message
                    yield JobEvent.model_validate(data)

    async def wait(self, job_id: str, *, on_event: Optional[OnEvent] = None, timeout_s: Optional[float] = None,
                   poll_interval_s: float = 3.0) -> JobView:
        """Follow the job until it is complete, failed or cancelled; its final view. `on_event` gets
        every new event; while the socket is down the job is polled, and a change arrives as a snapshot.
        Raises TimedOut after `timeout_s`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        follow = _Follow(on_event)
        failures = 0
        while True:
            try:
                async with asyncio.timeout(_left(deadline)), aclosing(self.events(job_id)) as events:
                    async for event in events:  # closed on return: the socket with it
                        failures = 0
                        if follow.seen(event):
                            return follow.job
            except TimeoutError:  # ours, or the socket's opening handshake
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimedOut(follow.job or await self.get(job_id)) from None
                failures += 1
            except (OSError, websockets.WebSocketException, Unavailable, ApiError) as e:
                if not _transient(e):
                    raise
                failures += 1
            # The socket is down (or closed): poll until it is time to reconnect.
            reconnect_at = time.monotonic() + min(MAX_RECONNECT_DELAY_S, 2.0 ** max(failures - 1, 0))
            while time.monotonic() < reconnect_at:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimedOut(follow.job or await self.get(job_id))
                try:
                    if follow.polled(await self.get(job_id)):
                        return follow.job
                except (Unavailable, ApiError) as e:
                    if not _transient(e):
                        raise
                await asyncio.sleep(min(poll_interval_s, max(0.0, reconnect_at - time.monotonic())))


# ---------------------------------------------------------------------- helpers


def api_error(r: httpx.Response) -> ApiError:
    try:
        body = r.json()
        error, reason = str(body["error"]), str(body["reason"])
    except (ValueError, KeyError, TypeError):
        error, reason = "http_error", r.text[:300] or f"HTTP {r.status_code}"
    retry_after = r.headers.get("retry-after")
    return ApiError(r.status_code, error, reason, float(retry_after) if retry_after and retry_after.isdigit() else None,
                    response=r)


def _transient(e: Exception) -> bool:
    """Whether `wait` goes on after e: the API or the socket out of reach, or a 5xx. An ApiError below 500 is
    the API's answer (no such job, not yours): it is raised."""
    return not (isinstance(e, ApiError) and e.status < 500)


def _plain(spec):
    return spec.model_dump(mode="json", exclude_unset=True) if hasattr(spec, "model_dump") else spec


def _left(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class _Follow:
    """The latest job view from events and polls, in seq order; `on_event` sees each change once."""

    def __init__(self, on_event: Optional[OnEvent]):
        self.on_event = on_event
        self.job: Optional[JobView] = None

    def seen(self, event: JobEvent) -> bool:
        """Take an event; whether the job is finished."""
        if self.job is None or event.seq > self.job.seq or (event.type == "snapshot" and event.seq == self.job.seq
                                                            and event.job != self.job):
            self.job = event.job
            if self.on_event:
                self.on_event(event)
        return self.job.terminal

    def polled(self, job: JobView) -> bool:
        if self.job is None or job.seq > self.job.seq:
            return self.seen(JobEvent(type="snapshot", job_id=job.job_id, seq=job.seq, job=job))
        return self.job.terminal


class _Meter:
    def __init__(self, total: int, progress: Optional[Progress]):
        self.total, self.done, self.progress = total, 0, progress

    def add(self, n: int) -> None:
        self.done += n
        if self.progress:
            self.progress(self.done, self.total)


class _Blob:
    """What to upload: a file (read in chunks, never whole) or bytes."""

    def __init__(self, source: Source, filename: Optional[str]):
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.data, self.path = bytes(source), None
            self.size, self.name = len(self.data), filename or "video.mp4"
        else:
            self.data, self.path = None, Path(source)
            self.size, self.name = self.path.stat().st_size, filename or self.path.name

    async def chunks(self, offset: int, length: int, meter: _Meter):
        if self.data is not None:
            for start in range(offset, offset + length, CHUNK):
                chunk = self.data[start:min(start + CHUNK, offset + length)]
                meter.add(len(chunk))
                yield chunk
            return
        with open(self.path, "rb") as f:
            f.seek(offset)
            left = length
            while left:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise OSError(f"{self.path} shrank while it was being uploaded")
                left -= len(chunk)
                meter.add(len(chunk))
                yield chunk
