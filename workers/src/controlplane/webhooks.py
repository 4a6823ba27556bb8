"""Webhooks, the rules (plain Python): which URLs may receive them, what is sent, how it is signed and
when a failed delivery is tried again. The job's Durable Object delivers them (webhook_outbox.py).

Signed as the Standard Webhooks specification says: headers `webhook-id` (the same on every retry, so
receivers can deduplicate), `webhook-timestamp` (of the attempt) and `webhook-signature`:
`v1,<base64 HMAC-SHA256 over "id.timestamp.body">`, with the user's secret (`whsec_<base64 key>`).
For 24 h after a rotation the previous secret signs too (a second `v1,` signature, space-separated),
so receivers can switch secrets without losing a delivery.

A user's secret is derived, not stored: HMAC(AUTH_SECRET, user, salt), where the random salt is what
D1 keeps. A copy of D1 alone does not give the secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from jobspec import WebhookRequest

DEFAULT_EVENTS = ("completed", "failed", "cancelled")
# The job's event (job_state) each webhook event is sent for.
JOB_EVENTS = {"complete": "completed", "error": "failed", "cancelled": "cancelled", "progress": "progress"}
LOOPBACK_FOR_TESTS = "127.0.0.1"
_BLOCKED_NAMES = ("localhost", "localhost.localdomain", "metadata", "metadata.google.internal", "instance-data")
_BLOCKED_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa", ".corp", ".private")


@dataclass(frozen=True)
class WebhookPolicy:
    retry_base_s: float = 5.0  # first retry after this, then twice as long each time...
    retry_max_s: float = 6 * 3600  # ...but never more than this between attempts...
    give_up_after_s: float = 24 * 3600  # ...and no attempt later than this after the event
    timeout_s: float = 10.0  # per attempt: a slow receiver is a failed attempt
    rotation_overlap_s: float = 24 * 3600
    allow_loopback: bool = False  # local tests only: http(s)://127.0.0.1


# ------------------------------------------------------------------ which URLs


def _whatwg_ipv4(host: str) -> Optional[ipaddress.IPv4Address]:
    """A host that a browser or fetch() reads as an IPv4 address (127.1, 0x7f.0.0.1, 2130706433, 017700000001),
    as the WHATWG URL standard parses it; None for a name."""
    labels = host.split(".")
    if labels and labels[-1] == "":
        labels = labels[:-1]
    if not labels or not re.fullmatch(r"(0x[0-9a-f]*|[0-9]+)", labels[-1]):
        return None
    numbers = []
    for label in labels:
        try:
            if label.startswith("0x"):
                numbers.append(int(label[2:] or "0", 16))
            elif len(label) > 1 and label.startswith("0"):
                numbers.append(int(label, 8))
            else:
                numbers.append(int(label, 10))
        except ValueError:
            raise ValueError(f"host {host!r} is neither a name nor an IPv4 address") from None
    if len(numbers) > 4 or any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"host {host!r} is neither a name nor an IPv4 address")
    value = numbers[-1] + sum(n << (8 * (3 - i)) for i, n in enumerate(numbers[:-1]))
    return ipaddress.IPv4Address(value)


def _address(host: str):
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"host {host!r} is not a valid IPv6 address") from None
        return address.ipv4_mapped or address
    return _whatwg_ipv4(host)


def check_url(url: str, policy: WebhookPolicy) -> str:
    """The URL if webhooks may be sent there: https, a public address or name; else ValueError(reason)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("webhook_url is not a valid URL") from None
    host = parts.hostname or ""  # lower case, IPv6 without brackets
    if parts.username is not None or parts.password is not None:
        raise ValueError("webhook_url must not carry credentials (user:password@)")
    if policy.allow_loopback and host == LOOPBACK_FOR_TESTS and parts.scheme in ("http", "https"):
        return url
    if parts.scheme != "https":
        raise ValueError("webhook_url must be an https:// URL")
    if not host:
        raise ValueError("webhook_url has no host")
    if port == 0:
        raise ValueError("webhook_url has port 0")
    address = _address(host)
    if address is not None:
        if not address.is_global or address.is_multicast or address.is_reserved:
            raise ValueError(f"webhook_url points to a non-public address ({address}): loopback, private, "
                             "link-local and metadata addresses are refused")
        return url
    name = host.rstrip(".")
    if "." not in name or name in _BLOCKED_NAMES or name.endswith(_BLOCKED_SUFFIXES):
        raise ValueError(f"webhook_url host {name!r} is not a public name")
    if not re.fullmatch(r"[a-z0-9.-]+", name):
        raise ValueError(f"webhook_url host {name!r} is not a valid host name")
    return url


def subscription(req: WebhookRequest, policy: WebhookPolicy) -> Optional[dict]:
    """What a job stores: {"url", "events"}, or None without a webhook_url (ValueError: URL refused)."""
    if req.webhook_url is None:
        if req.webhook_events is not None:
            raise ValueError("webhook_events needs a webhook_url")
        return None
    return {"url": check_url(req.webhook_url, policy),
            "events": sorted(set(req.webhook_events or DEFAULT_EVENTS))}


# ------------------------------------------------------------------ what is sent


def wanted(subscribed: Optional[dict], job_event_type: str) -> Optional[str]:
    """The webhook event a job event is sent as, when the job's subscription wants it."""
    event = JOB_EVENTS.get(job_event_type)
    return event if subscribed and event in subscribed["events"] else None


def payload_type(event: str) -> str:
    return f"job.{event}"


# ------------------------------------------------------------------ signatures and secrets


def derive_secret(auth_secret: str, user_id: str, salt: str) -> str:
    key = hmac.new(auth_secret.encode(), f"webhook-secret\n{user_id}\n{salt}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(key).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: str) -> str:
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    return " ".join("v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode()
                    for s in secrets)


def headers(secrets: list[str], msg_id: str, timestamp: int, body: str) -> dict:
    return {"content-type": "application/json", "user-agent": "gpu-export-webhooks/1",
            "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, msg_id, timestamp, body)}


def active_salts(row: Optional[dict], now: float) -> list[str]:
    """The salts whose secrets sign now: the current one, and the previous one during the overlap."""
    if not row:
        return []
    salts = [row["salt"]]
    if row.get("previous_salt") and (row.get("previous_until") or 0) > now:
        salts.append(row["previous_salt"])
    return salts


# ------------------------------------------------------------------ retries


def delivered(status: Optional[int]) -> bool:
    return status is not None and 200 <= status < 300


def next_attempt_at(created_at: float, attempts: int, now: float, policy: WebhookPolicy) -> Optional[float]:
    """When to try again after `attempts` failed attempts; None: give up (past give_up_after_s)."""
    at = now + min(policy.retry_base_s * 2 ** (attempts - 1), policy.retry_max_s)
    return at if at <= created_at + policy.give_up_after_s else None
