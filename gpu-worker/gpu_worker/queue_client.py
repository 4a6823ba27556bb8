"""The Cloudflare Queues HTTP pull contract, client side.

Production: api_base https://api.cloudflare.com/client/v4 with an API token that has Queues
Edit. Local dev: the Worker serves the same paths (LocalQueueBroker), so this client is identical.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class PulledMessage:
    id: str
    body: dict
    lease_id: str
    attempts: int
    timestamp_ms: int


def decode_body(raw, content_type: str | None):
    """Queues base64-encodes `json` and `bytes` bodies for pull consumers; `text` arrives as is."""
    if content_type in ("json", "bytes"):
        raw = base64.b64decode(raw).decode()
    return json.loads(raw) if isinstance(raw, str) else raw


class QueueClient:
    def __init__(self, api_base: str, account_id: str, queue_id: str, token: str, http: httpx.Client | None = None):
        self.base = f"{api_base.rstrip('/')}/accounts/{account_id}/queues/{queue_id}/messages"
        self.http = http or httpx.Client(timeout=30)
        self.headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}

    def _post(self, action: str, body: dict) -> dict:
        r = self.http.post(f"{self.base}/{action}", headers=self.headers, json=body)
        r.raise_for_status()
        data = r.json()
        if not data.get("success", False):
            raise RuntimeError(f"queue {action} failed: {data.get('errors')}")
        return data.get("result") or {}

    def pull(self, batch_size: int = 1, visibility_timeout_ms: int = 60_000) -> list[PulledMessage]:
        result = self._post("pull", {"batch_size": batch_size, "visibility_timeout_ms": visibility_timeout_ms})
        return [PulledMessage(id=m["id"], lease_id=m["lease_id"], attempts=m.get("attempts", 1),
                              timestamp_ms=m.get("timestamp_ms", 0),
                              body=decode_body(m["body"], (m.get("metadata") or {}).get("CF-Content-Type")))
                for m in result.get("messages", [])]

    def ack(self, lease_ids: list[str], retries: list[tuple[str, float]] = ()) -> dict:
        return self._post("ack", {"acks": [{"lease_id": x} for x in lease_ids],
                                  "retries": [{"lease_id": x, "delay_seconds": d} for x, d in retries]})
