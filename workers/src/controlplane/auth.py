"""Credentials, all stateless HMACs over AUTH_SECRET / WORKER_SECRET (no lookups per request):

- user tokens:   "u1.<user id>.<mac>"                 (Authorization: Bearer ...)
- socket tickets "<user id>.<job id>.<expiry>.<nonce>.<mac>"  (?ticket=..., browsers cannot set WS headers;
                 the job's Durable Object lets each ticket open one socket)
- pod requests:  X-Pod-Signature over method, path, time, nonce and body (jobspec.pod_signature);
                 the nonce is remembered by the receiving Durable Object, so a replay is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

from jobspec import SIGNATURE_MAX_SKEW_S, parse_signature_header, pod_signature

_USER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Unauthorized(Exception):
    pass


def same(given: str, expected: str) -> bool:
    """Constant-time equality of a credential and its expected value, as bytes: compare_digest raises
    TypeError for a str with non-ASCII characters, and a header may carry any byte."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def _mac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()[:40]


def new_user_id() -> str:
    return "usr_" + secrets.token_hex(8)


def issue_user_token(secret: str, user_id: str) -> str:
    if not _USER_ID_RE.match(user_id):
        raise ValueError("bad user id")
    return f"u1.{user_id}.{_mac(secret, 'user:' + user_id)}"


def user_from_token(secret: str, token: str) -> str:
    """The user id an anonymous token (`u1.<user id>.<mac>`) signs in as."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != "u1" or not _USER_ID_RE.match(parts[1]):
        raise Unauthorized("malformed token")
    if not same(parts[2], _mac(secret, "user:" + parts[1])):
        raise Unauthorized("invalid token")
    return parts[1]


class Ticket(NamedTuple):
    user_id: str
    id: str  # unique per ticket: the job's DO lets each open one socket
    expires_at: int


def issue_ws_ticket(secret: str, user_id: str, job_id: str, expires_at: int, nonce: str | None = None) -> str:
    nonce = nonce or secrets.token_hex(8)
    return f"{user_id}.{job_id}.{expires_at}.{nonce}.{_mac(secret, f'ws:{user_id}:{job_id}:{expires_at}:{nonce}')}"


def check_ws_ticket(secret: str, ticket: str | None, job_id: str, now: float) -> Ticket:
    """The ticket, if it is genuine, for this job and unexpired (single use is the job's DO's to enforce)."""
    parts = (ticket or "").split(".")
    if len(parts) != 5 or not (parts[2].isascii() and parts[2].isdigit()):
        raise Unauthorized("missing or malformed ticket")
    user_id, ticket_job, expires_at, nonce, mac = parts
    if not same(mac, _mac(secret, f"ws:{user_id}:{ticket_job}:{expires_at}:{nonce}")):
        raise Unauthorized("invalid ticket")
    if ticket_job != job_id:
        raise Unauthorized("ticket is for another job")
    if int(expires_at) < now:
        raise Unauthorized("ticket expired")
    return Ticket(user_id, mac, int(expires_at))


def check_pod_signature(secret: str, header: str | None, method: str, path: str, body: bytes,
                        now: float) -> str:
    """Verify a pod request; returns its nonce (the caller refuses nonces it has seen)."""
    if not secret:
        raise Unauthorized("pod API disabled: WORKER_SECRET is not set")
    if not header:
        raise Unauthorized("missing X-Pod-Signature")
    try:
        ts, nonce, sig = parse_signature_header(header)
    except ValueError as e:
        raise Unauthorized(str(e)) from None
    if abs(now - ts) > SIGNATURE_MAX_SKEW_S:
        raise Unauthorized("signature timestamp outside the allowed window")
    if not 8 <= len(nonce) <= 64:
        raise Unauthorized("bad nonce")
    if not same(sig, pod_signature(secret, method, path, ts, nonce, body)):
        raise Unauthorized("invalid signature")
    return nonce
