"""ExportJobState: one Durable Object per job, the single authority on it.

Every change goes the same way (`_apply`): load the job from storage, run one pure transition from
job_state, persist, mirror to D1, broadcast the events to the job's WebSockets, then re-queue or
dead-letter as the outcome says, and re-arm the lease alarm. Nothing lives only in memory: the object
may hibernate between any two calls (its sockets stay open; their data is in attachments).

Callers reach it by RPC with JSON strings (`init`, `snapshot`, `report` for pods, `user_action` for
users) and by fetch for the WebSocket upgrade. Replies are JSON: {"status": <http status>, "body": {...}}.
Pod reports are validated here with the jobspec models the GPU worker sends them with (pydantic loads
in Durable Objects since the workers SDK is vendored: its import context allows pydantic-core's entropy).
"""

from __future__ import annotations

import json
import secrets
import time

from pydantic import ValidationError
from workers import DurableObject

from controlplane import bindings, job_state, metrics, observability, retention, safe_json
from controlplane.job_state import Job, Outcome, Rejected
from controlplane.settings import Settings
from controlplane.store import Store
from controlplane.webhook_outbox import WebhookOutbox
from jobspec import POD_REPORTS, ClaimGrant, PodIdentity, QueueMessage, error_summary

NONCE_TTL_S = 300
MAX_SOCKET_MESSAGE_BYTES = 4096  # clients send {"type": "ping"} and {"type": "subscribe"}


def reply(status: int, body: dict) -> str:
    return json.dumps({"status": status, "body": body})


def rejected(e: Rejected, job: Job) -> str:
    return reply(e.status, {"error": e.code, "reason": e.reason, "status": job.status})


class ExportJobState(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.born = time.time()  # reported in pongs: shows when the object was rebuilt after hibernation
        self.settings = Settings.from_env(env)
        self.store = Store(bindings.D1(env.DB))
        self.outbox = WebhookOutbox(ctx, bindings.D1(env.DB), self.settings.auth_secret, self.settings.webhooks)

    # ---------------------------------------------------------------- storage

    async def _load(self) -> Job | None:
        raw = await self.ctx.storage.get("job")
        return Job.from_dict(json.loads(raw)) if raw else None

    async def _save(self, job: Job) -> None:
        await self.ctx.storage.put("job", json.dumps(job.to_dict()))

    def _first_use(self, nonce: str, now: float) -> bool:
        """Whether a pod request's nonce or a socket ticket's id is new; it is remembered for as long as
        the signature or ticket it came with is valid."""
        sql = self.ctx.storage.sql
        sql.exec("CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, ts REAL NOT NULL)")
        sql.exec("DELETE FROM nonces WHERE ts < ?", now - max(NONCE_TTL_S, self.settings.ws_ticket_ttl_s))
        if bindings.to_py(sql.exec("SELECT 1 AS x FROM nonces WHERE nonce = ?", nonce).toArray()):
            return False
        sql.exec("INSERT INTO nonces (nonce, ts) VALUES (?, ?)", nonce, now)
        return True

    # ---------------------------------------------------------------- RPC

    async def init(self, job_json: str) -> str:
        """Create the job (idempotent: a second init returns the existing job unchanged)."""
        job = await self._load()
        if job is None:
            job = Job.from_dict(json.loads(job_json))
            await self._save(job)
            await self._arm_alarm(job)  # watches the job's first queue message (job_state.redispatch)
        return reply(200, job_state.view(job))

    async def discard(self) -> None:
        """Undo an init whose job could not be created (its D1 row or queue message failed)."""
        await self.ctx.storage.deleteAll()

    async def snapshot(self, user_id: str) -> str:
        job = await self._load()
        if job is None or job.user_id != user_id:
            return reply(404, {"error": "not_found", "reason": "no such job"})
        return reply(200, job_state.view(job))

    async def report(self, action: str, payload_json: str, nonce: str) -> str:
        """A pod's claim or report (the Worker checked its signature); a nonce seen before is a replay."""
        now = time.time()
        if action not in POD_TRANSITIONS:
            return reply(404, {"error": "not_found", "reason": f"unknown pod action {action!r}"})
        try:
            report = POD_MODELS[action].model_validate_json(payload_json)
        except ValidationError as e:
            return reply(422, {"error": "invalid_request", "reason": error_summary(e)})
        if not self._first_use(nonce, now):
            return reply(401, {"error": "replayed", "reason": "request replayed (nonce already used)"})
        job = await self._load()
        if job is None:
            return reply(404, {"error": "not_found", "reason": "no such job"})
        result = await self._transition(job, POD_TRANSITIONS[action], report, now)
        if action in ("claim", "heartbeat") and job.pod_id:
            await self.store.pod_seen(job.pod_id, job.job_id, now)
        return result

    async def webhooks(self, user_id: str) -> str:
        """The job's webhook deliveries and every attempt (GET /api/jobs/{id}/webhooks)."""
        job = await self._load()
        if job is None or job.user_id != user_id:
            return reply(404, {"error": "not_found", "reason": "no such job"})
        return reply(200, self.outbox.listing(job))

    async def user_action(self, action: str, user_id: str) -> str:
        """cancel or retry, by the job's owner (anyone else is told the job does not exist)."""
        now = time.time()
        job = await self._load()
        if job is None or job.user_id != user_id or action not in USER_TRANSITIONS:
            return reply(404, {"error": "not_found", "reason": "no such job"})
        return await self._transition(job, USER_TRANSITIONS[action], None, now)

    async def _transition(self, job: Job, transition, payload, now: float) -> str:
        try:
            outcome = transition(job, payload, now, self.settings.policy)
        except Rejected as e:
            if e.discard:
                await self._discard_outputs(job, e.discard)
            return rejected(e, job)
        await self._apply(job, outcome, now)
        return reply(200, outcome.reply or job_state.view(job))

    async def alarm(self, *_info):
        job = await self._load()
        if job is None:
            return
        now = time.time()
        await self._apply(job, job_state.on_alarm(job, now, self.settings.policy), now, arm=False)
        await self.outbox.deliver_due(job, time.time())
        await self._arm_alarm(await self._load() or job)  # requests may have changed the job meanwhile

    # ---------------------------------------------------------------- effects

    async def _apply(self, job: Job, outcome: Outcome, now: float, arm: bool = True) -> None:
        if outcome.changed:
            retention.stamp_expiry(job, self.settings.retention)
            await self._save(job)
            self.outbox.enqueue(job, outcome.events, now)  # stored with the change; sent by the alarm only
            if outcome.events or outcome.lease_expired:  # not for every heartbeat
                print(observability.state_change_line(job, outcome.events, outcome.lease_expired))
            if outcome.lease_expired:  # counted before D1 shows the job pending again
                await metrics.count(self.store.d1, "lease_expiries")
            await self._mirror(job)
        for event in outcome.events:
            self._broadcast(job_state.published(event, job))
        if outcome.dead_letter:
            await self.store.dead_letter(job, outcome.dead_letter, now)
        if outcome.requeue_delay_s is not None:
            message = QueueMessage(job_id=job.job_id, attempt=job.dispatches)
            await bindings.queue_send(self.env.GPU_QUEUE, message.model_dump(), outcome.requeue_delay_s)
        if arm:
            await self._arm_alarm(job)
        if outcome.changed and job.terminal:  # it has just finished: no lease will commit another output
            await self._discard_outputs(job)

    async def _arm_alarm(self, job: Job) -> None:
        """While a pod holds the lease, an alarm is due no later than the lease could expire. A
        heartbeat does not move it: when it fires early, expire_lease finds the lease alive and the
        alarm is re-armed from the latest heartbeat (one alarm per lease period, not per heartbeat).
        While the job is pending, the alarm re-sends its queue message if no pod claims it in time. It also
        sends the webhook deliveries that are due (webhook_outbox.py)."""
        due = [t for t in (job_state.next_alarm(job, self.settings.policy), self.outbox.next_due(job)) if t is not None]
        at = min(due) if due else None
        current = bindings.to_py(await self.ctx.storage.getAlarm())
        if at is None:
            if current is not None:
                await self.ctx.storage.deleteAlarm()
        elif current is None or current > at * 1000:
            await self.ctx.storage.setAlarm(at * 1000)

    async def _discard_outputs(self, job: Job, key: str | None = None) -> None:
        """Delete outputs no lease will commit: `key` (a refused lease's), or else every output of the
        job but the committed one. A failure leaves garbage, not a wrong answer: it is only logged."""
        try:
            keys = [key] if key else [k for k in await bindings.r2_keys(self.env.VIDEOS, job_state.output_prefix(
                job.job_id)) if k != job.output_key]
            await bindings.r2_delete(self.env.VIDEOS, keys)
        except Exception as e:
            print(f"could not delete uncommitted outputs of job {job.job_id}: {e}")

    async def _mirror(self, job: Job) -> None:
        try:
            await self.store.mirror(job)
        except Exception as e:  # D1 is a mirror: the next change re-writes the whole row
            print(f"mirror of job {job.job_id} to D1 failed: {e}")

    # ---------------------------------------------------------------- WebSockets

    async def fetch(self, request):
        job = await self._load()
        user_id = request.headers.get("x-user-id")
        upgrade = (request.headers.get("upgrade") or "").lower()
        if job is None or job.user_id != user_id or upgrade != "websocket":
            return bindings.json_response({"error": "not_found", "reason": "no such job"}, 404)
        if not self._first_use("ticket:" + (request.headers.get("x-ticket-id") or ""), time.time()):
            return bindings.json_response({"error": "unauthorized", "reason": "ticket already used: ask for a new one"
                                           f" (POST /api/jobs/{job.job_id}/ws-ticket)"}, 401)
        client, server = bindings.accept_websocket(self.ctx, {"user_id": user_id}, [user_id])
        server.send(json.dumps(job_state.snapshot(job)))
        return bindings.websocket_response(client)

    async def webSocketMessage(self, ws, message):
        try:
            kind = safe_json.loads(str(message), MAX_SOCKET_MESSAGE_BYTES, what="message").get("type")
        except safe_json.Refused as e:
            ws.send(json.dumps({"type": "error", "error": e.code, "reason": e.reason}))
            return
        except AttributeError:
            kind = None
        if kind == "ping":
            ws.send(json.dumps({"type": "pong", "ts": time.time(), "instance_born": self.born}))
        elif kind == "subscribe":
            job = await self._load()
            ws.send(json.dumps(job_state.snapshot(job)))
        else:
            ws.send(json.dumps({"type": "error", "error": "unknown message: send subscribe or ping"}))

    async def webSocketClose(self, ws, code, reason, was_clean):
        # 1005 and 1006 describe a close; they may not be sent in one.
        ws.close(code if code and code not in (1005, 1006) else 1000, "closing")

    def _broadcast(self, event: dict) -> None:
        text = json.dumps(event)
        for ws in bindings.sockets(self.ctx):
            try:
                ws.send(text)
            except Exception:
                pass  # a socket closing under us; the runtime drops it


# ---------------------------------------------------------------- action tables
# Each takes (job, validated report or None, now, policy) and returns job_state's Outcome.


def _claim(job, r: PodIdentity, now, policy):
    outcome = job_state.claim(job, r.pod_id, secrets.token_urlsafe(18), now, policy)
    outcome.reply = ClaimGrant(**outcome.reply).model_dump()  # the grant's shape is the one the pod reads
    return outcome


def _heartbeat(job, r, now, policy):
    return job_state.heartbeat(job, r.lease_id, now)


def _progress(job, r, now, policy):
    return job_state.progress(job, r.lease_id, r.frame, r.total_frames, r.fps, r.eta_s, now)


def _checkpoint(job, r, now, policy):
    return job_state.checkpoint(job, r.lease_id, r.frame, r.total_frames, now)


def _complete(job, r, now, policy):
    return job_state.complete(job, r.lease_id, r.output_key, r.size_bytes, r.frames, r.gpu_seconds, now)


def _fail(job, r, now, policy):
    return job_state.fail(job, r.lease_id, r.reason, r.retryable, r.gpu_seconds, now, policy)


def _interrupted(job, r, now, policy):
    return job_state.interrupted(job, r.lease_id, r.frame, r.reason, r.gpu_seconds, now)


POD_MODELS = {"claim": PodIdentity, **POD_REPORTS}
POD_TRANSITIONS = {
    "claim": _claim, "heartbeat": _heartbeat, "progress": _progress, "checkpoint": _checkpoint,
    "complete": _complete, "fail": _fail, "interrupted": _interrupted,
}
USER_TRANSITIONS = {
    "cancel": lambda job, _, now, policy: job_state.cancel(job, now),
    "retry": lambda job, _, now, policy: job_state.retry(job, now),
}
