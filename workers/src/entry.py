"""The Worker: routes HTTP requests to the API modules and, in local dev, feeds the queue broker.

Durable Object classes are exported from here because wrangler.toml names them in this module."""

import json
import time
import traceback
from urllib.parse import parse_qs, urlparse

from workers import WorkerEntrypoint

from controlplane import bindings, observability, retention
from controlplane.job_object import ExportJobState  # noqa: F401  (Durable Object class)
from controlplane.queue_broker import LOCAL_QUEUE_ID, LocalQueueBroker  # noqa: F401  (Durable Object class)
from controlplane.usage_counter import UsageCounter  # noqa: F401  (Durable Object class)
from controlplane.settings import Settings
from controlplane.http import MAX_BODY_BYTES, Call, HttpError
from controlplane.routes import ROUTER


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        started, seen = time.time(), {}
        response = await self._respond(request, seen)
        call = seen.get("call")
        print(observability.request_line(request.method, seen.get("route"), int(response.status),
                                         (call.params.get("job_id") if call else None),
                                         call.user_id if call else None, started))
        return response

    async def _respond(self, request, seen: dict):
        url = urlparse(request.url)
        try:
            handler, params, seen["route"] = ROUTER.match(request.method, url.path)
            body = "" if request.method in ("GET", "HEAD") else (await request.text())
            if len(body) > MAX_BODY_BYTES:
                raise HttpError(413, "too_large", "request body too large")
            call = seen["call"] = Call(
                env=self.env, settings=Settings.from_env(self.env), method=request.method, path=url.path,
                query=parse_qs(url.query), headers=request.headers, body=body, origin=f"{url.scheme}://{url.netloc}",
                now=time.time(), params=params, raw=request)
            result = await handler(call)
        except HttpError as e:
            return bindings.json_response({"error": e.code, "reason": e.reason}, e.status, e.headers)
        except Exception as e:
            traceback.print_exc()
            return bindings.json_response({"error": "internal", "reason": f"internal error: {type(e).__name__}"}, 500)
        if isinstance(result, tuple):
            return bindings.json_response(result[1], result[0])
        return result

    async def scheduled(self, controller, env=None, ctx=None):
        """The Cron Trigger (wrangler.toml [triggers]): the retention sweep."""
        summary = await retention.sweep(bindings.R2Bucket(self.env.VIDEOS), bindings.D1(self.env.DB),
                                        Settings.from_env(self.env).retention, time.time())
        print(json.dumps({"event": "retention_sweep", "cron": str(getattr(controller, "cron", "")), **summary}))

    async def queue(self, batch, *_env_ctx):
        """Local dev only: the push consumer that hands messages to the pull broker."""
        messages = [{"id": str(m.id), "body": m.body if isinstance(m.body, str) else json.dumps(bindings.to_py(m.body)),
                     "timestamp_ms": bindings.message_timestamp_ms(m)} for m in batch.messages]
        await self.env.QUEUE_BROKER.getByName(LOCAL_QUEUE_ID).enqueue(json.dumps(messages))
        batch.ackAll()
