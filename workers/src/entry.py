"""The Worker: routes HTTP requests to the API modules and, in local dev, feeds the queue broker.

Durable Object classes are exported from here because wrangler.toml names them in this module."""

import json
import time
import traceback
from urllib.parse import parse_qs, urlparse

from workers import WorkerEntrypoint

from controlplane import bindings
from controlplane.job_object import ExportJobState  # noqa: F401  (Durable Object class)
from controlplane.queue_broker import LOCAL_QUEUE_ID, LocalQueueBroker  # noqa: F401  (Durable Object class)
from controlplane.usage_counter import UsageCounter  # noqa: F401  (Durable Object class)
from controlplane.settings import Settings

from controlplane.http import MAX_BODY_BYTES, Call, HttpError
from controlplane.routes import build_router

ROUTER = build_router()


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        try:
            handler, params = ROUTER.match(request.method, url.path)
            body = "" if request.method in ("GET", "HEAD") else (await request.text())
            if len(body) > MAX_BODY_BYTES:
                raise HttpError(413, "too_large", "request body too large")
            call = Call(env=self.env, settings=Settings.from_env(self.env), method=request.method, path=url.path,
                        query=parse_qs(url.query), headers=request.headers, body=body,
                        origin=f"{url.scheme}://{url.netloc}", now=time.time(), params=params, raw=request)
            result = await handler(call)
        except HttpError as e:
            return bindings.json_response({"error": e.code, "reason": e.reason}, e.status, e.headers)
        except Exception as e:
            traceback.print_exc()
            return bindings.json_response({"error": "internal", "reason": f"internal error: {type(e).__name__}"}, 500)
        if isinstance(result, tuple):
            return bindings.json_response(result[1], result[0])
        return result

    async def queue(self, batch, *_env_ctx):
        """Local dev only: the push consumer that hands messages to the pull broker."""
        messages = [{"id": str(m.id), "body": m.body if isinstance(m.body, str) else json.dumps(bindings.to_py(m.body)),
                     "timestamp_ms": bindings.message_timestamp_ms(m)} for m in batch.messages]
        await self.env.QUEUE_BROKER.getByName(LOCAL_QUEUE_ID).enqueue(json.dumps(messages))
        batch.ackAll()
