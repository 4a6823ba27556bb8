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


async def r2_first_bytes(bucket, key: str, length: int) -> bytes:
    """The object's first `length` bytes (at most its size: R2 refuses a range past the end)."""
    obj = await bucket.get(key, js_object({"range": {"offset": 0, "length": length}}))
    if to_py(obj) is None:
        return b""
    data = await obj.arrayBuffer()  # the SDK's R2 wrapper may already hand over Python bytes
    return data.to_bytes() if hasattr(data, "to_bytes") else bytes(data)


async def r2_create_multipart(bucket, key: str, content_type: str, metadata: dict[str, str]) -> str:
    options = {"httpMetadata": {"contentType": content_type}, "customMetadata": metadata}
    upload = await bucket.createMultipartUpload(key, js_object(options))
    return upload.uploadId


async def r2_complete_multipart(bucket, key: str, upload_id: str, parts: list[dict]) -> tuple[int, dict]:
    """The completed object's size and custom metadata."""
    upload = bucket.resumeMultipartUpload(key, upload_id)
    obj = await upload.complete(to_js(parts, dict_converter=Object.fromEntries))
    return int(obj.size), to_py(obj.customMetadata) or {}


async def r2_abort_multipart(bucket, key: str, upload_id: str) -> None:
    await bucket.resumeMultipartUpload(key, upload_id).abort()


def epoch_ms(ts) -> int:
    """A runtime timestamp in ms: a JS Date, or the Python datetime (naive, in the runtime's UTC) the
    vendored SDK converts some of them to."""
    if hasattr(ts, "getTime"):
        return int(ts.getTime())
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return int(ts.timestamp() * 1000)


def message_timestamp_ms(message) -> int:
    """A queue message's timestamp in ms (the vendored SDK hands it over as a datetime)."""
    return epoch_ms(message.timestamp)


async def r2_objects(bucket, prefix: str):
    """Every object under prefix, as {"key", "size", "uploaded_ms"}, a page (1000) at a time."""
    cursor = None
    while True:
        options = {"prefix": prefix, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = await bucket.list(js_object(options))
        for obj in page.objects:
            yield {"key": str(obj.key), "size": int(obj.size), "uploaded_ms": epoch_ms(obj.uploaded)}
        if not page.truncated:
            return
        cursor = page.cursor


async def r2_keys(bucket, prefix: str) -> list[str]:
    return [o["key"] async for o in r2_objects(bucket, prefix)]


async def r2_delete(bucket, keys: list[str]) -> None:
    for i in range(0, len(keys), 1000):  # the binding deletes up to 1000 keys per call
        await bucket.delete(to_js(keys[i:i + 1000]))


class R2Bucket:
    """A bucket as the retention sweep lists and deletes it."""

    def __init__(self, bucket):
        self.bucket = bucket

    def objects(self, prefix: str):
        return r2_objects(self.bucket, prefix)

    async def delete(self, keys: list[str]) -> None:
        await r2_delete(self.bucket, keys)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await r2_abort_multipart(self.bucket, key, upload_id)


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


def text_response(text: str, content_type: str, status: int = 200) -> Response:
    return Response(text, status=status, headers={"content-type": content_type, "cache-control": "no-store"})


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


# ------------------------------------------------------------------ WebCrypto (JWT signatures)

# importKey and verify parameters per JWS algorithm. ECDSA signatures in a JWS are r||s (64 bytes for
# P-256), which is the form WebCrypto verifies.
_IMPORT_PARAMS = {"RS256": {"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-256"},
                  "ES256": {"name": "ECDSA", "namedCurve": "P-256"}}
_VERIFY_PARAMS = {"RS256": {"name": "RSASSA-PKCS1-v1_5"}, "ES256": {"name": "ECDSA", "hash": "SHA-256"}}


async def import_public_key(jwk: dict, alg: str):
    from js import crypto

    return await crypto.subtle.importKey("jwk", js_object(jwk), js_object(_IMPORT_PARAMS[alg]), False,
                                         to_js(["verify"]))


async def verify_signature(key, alg: str, signature: bytes, data: bytes) -> bool:
    from js import crypto

    return bool(await crypto.subtle.verify(js_object(_VERIFY_PARAMS[alg]), key, to_js(signature), to_js(data)))


# ------------------------------------------------------------------ outbound HTTP


async def fetch_json(url: str, timeout_s: float = 10) -> dict:
    from js import AbortSignal, fetch

    response = await fetch(url, js_object({"headers": {"accept": "application/json"},
                                           "signal": AbortSignal.timeout(int(timeout_s * 1000))}))
    if not response.ok:
        raise OSError(f"HTTP {response.status}")
    return json.loads(await response.text())


async def post(url: str, body: str, headers: dict, timeout_s: float) -> int:
    """POST without following redirects (a 3xx is the answer); the status, or an exception (network
    error, timeout) whose message says what happened."""
    from js import AbortSignal, fetch

    response = await fetch(url, js_object({"method": "POST", "body": body, "headers": headers, "redirect": "manual",
                                           "signal": AbortSignal.timeout(int(timeout_s * 1000))}))
    status = int(response.status)
    if response.body is not None and response.body is not JS_NULL:
        await response.body.cancel()
    return status
