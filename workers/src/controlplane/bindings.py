"""The JS/Pyodide edge: every call into a Cloudflare binding goes through here, so the rest of the
control plane handles plain Python values (dicts, strings, None) and can be unit-tested on CPython."""

from __future__ import annotations

import json
from datetime import timezone

from js import JSON, Object, WebSocketPair
from pyodide.ffi import to_js
from workers import Response

JS_NULL = JSON.parse("null")  # Python None becomes JS undefined, which D1 refuses to bind


def _nulls_to_none(value):
    if isinstance(value, dict):
        return {k: _nulls_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulls_to_none(v) for v in value]
    return None if value is JS_NULL or type(value).__name__ == "JsNull" else value


def to_py(value):
    """A JS value as plain Python, JS null (Pyodide's jsnull) included as None, at any depth."""
    if value is None or value is JS_NULL:
        return None
    return _nulls_to_none(value.to_py() if hasattr(value, "to_py") else value)


def js_object(data: dict):
    return to_js(data, dict_converter=Object.fromEntries)


def _bind_args(params):
    return [JS_NULL if p is None else p for p in params]


# ------------------------------------------------------------------ D1


class D1:
    def __init__(self, db):
        self.db = db

    def _stmt(self, sql: str, params=()):
        stmt = self.db.prepare(sql)
        return stmt.bind(*_bind_args(params)) if params else stmt

    async def run(self, sql: str, *params) -> int:
        """Execute; returns the number of rows changed."""
        result = to_py(await self._stmt(sql, params).run())
        return int((result or {}).get("meta", {}).get("changes", 0))

    async def first(self, sql: str, *params) -> dict | None:
        return to_py(await self._stmt(sql, params).first())

    async def all(self, sql: str, *params) -> list[dict]:
        result = to_py(await self._stmt(sql, params).all())
        return list(result.get("results", []))

    async def batch(self, statements: list[tuple[str, tuple]]) -> list[int]:
        """All statements in one transaction: all applied or none. The rows each one changed."""
        results = to_py(await self.db.batch([self._stmt(sql, params) for sql, params in statements]))
        return [int((r or {}).get("meta", {}).get("changes", 0)) for r in results or []]


# ------------------------------------------------------------------ R2, Queue


async def r2_size(bucket, key: str) -> int | None:
    """Size of an object, or None when it does not exist."""
    obj = await bucket.head(key)
    return None if to_py(obj) is None else int(obj.size)


async def r2_keys(bucket, prefix: str) -> list[str]:
    keys, cursor = [], None
    while True:
        listing = await bucket.list(js_object({"prefix": prefix, **({"cursor": cursor} if cursor else {})}))
        keys += [str(obj.key) for obj in listing.objects]
        if not listing.truncated:
            return keys
        cursor = listing.cursor


async def r2_delete(bucket, keys: list[str]) -> None:
    for i in range(0, len(keys), 1000):  # R2 deletes at most 1000 keys a call
        await bucket.delete(to_js(keys[i:i + 1000]))


async def r2_create_multipart(bucket, key: str, content_type: str) -> str:
    upload = await bucket.createMultipartUpload(key, js_object({"httpMetadata": {"contentType": content_type}}))
    return upload.uploadId


async def r2_complete_multipart(bucket, key: str, upload_id: str, parts: list[dict]) -> int:
    upload = bucket.resumeMultipartUpload(key, upload_id)
    obj = await upload.complete(to_js(parts, dict_converter=Object.fromEntries))
    return int(obj.size)


async def r2_abort_multipart(bucket, key: str, upload_id: str) -> None:
    await bucket.resumeMultipartUpload(key, upload_id).abort()


def message_timestamp_ms(message) -> int:
    """A queue message's timestamp in ms. The vendored SDK hands it over as a Python datetime (naive,
    in the runtime's UTC); the runtime's own module gave the JS Date."""
    ts = message.timestamp
    if hasattr(ts, "getTime"):
        return int(ts.getTime())
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return int(ts.timestamp() * 1000)


async def queue_send(queue, body: dict, delay_s: float = 0) -> None:
    # "text" keeps the body readable by HTTP pull consumers ("json" would arrive base64-encoded).
    options = {"contentType": "text"}
    if delay_s > 0:
        options["delaySeconds"] = int(round(delay_s))
    await queue.send(json.dumps(body), js_object(options))


# ------------------------------------------------------------------ HTTP


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data), status=status,
                    headers={"content-type": "application/json", "cache-control": "no-store", **(headers or {})})


def redirect(url: str) -> Response:
    return Response("", status=302, headers={"location": url})


async def read_body(request, limit: int) -> bytes:
    data = bytes((await request.bytes()) or b"")
    if len(data) > limit:
        raise OverflowError(len(data))
    return data


# ------------------------------------------------------------------ WebSockets (hibernation API)


def accept_websocket(ctx, attachment: dict, tags: list[str]):
    """Accept a hibernatable socket; per-socket data lives in its attachment (memory does not survive)."""
    client, server = WebSocketPair.new()
    ctx.acceptWebSocket(server, to_js(tags))
    server.serializeAttachment(json.dumps(attachment))
    return client, server


def websocket_response(client) -> Response:
    return Response(None, status=101, web_socket=client)


def attachment(ws) -> dict:
    raw = to_py(ws.deserializeAttachment())
    return json.loads(raw) if raw else {}


def sockets(ctx) -> list:
    return list(ctx.getWebSockets())


def with_headers(request, extra: dict):
    """A copy of the runtime's request with headers set (overwriting any the client sent)."""
    from js import Headers, Request

    js_request = getattr(request, "js_object", request)
    headers = Headers.new(js_request.headers)
    for name, value in extra.items():
        headers.set(name, value)
    return Request.new(js_request, js_object({"headers": headers}))
