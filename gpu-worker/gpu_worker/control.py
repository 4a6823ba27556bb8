"""The control plane's pod API, client side: claim a job, then report under the granted lease.

Each request is signed (jobspec.pod_signature) with a fresh nonce, so a retry is a new request; the
control plane makes repeats harmless (stale progress is ignored, a repeated `complete` from the pod
that completed the job is acknowledged), which is what lets transient failures be retried here.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

import httpx

from jobspec import SIGNATURE_HEADER, ClaimGrant, format_signature_header, pod_signature

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class LeaseLost(Exception):
    """The control plane refused a report: the job was cancelled, finished or re-assigned."""

    def __init__(self, status: str | None, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"


class ControlPlaneError(Exception):
    pass


@dataclass
class Reply:
    status: int
    body: dict


class ControlPlane:
    def __init__(self, base_url: str, secret: str, pod_id: str, http: httpx.Client | None = None,
                 attempts: int = 5, backoff_s: float = 0.5):
        self.base, self.secret, self.pod_id = base_url.rstrip("/"), secret, pod_id
        self.http = http or httpx.Client(timeout=20)
        self.attempts, self.backoff_s = attempts, backoff_s

    def _signed(self, path: str, body: bytes) -> dict:
        ts, nonce = int(time.time()), secrets.token_hex(12)
        sig = pod_signature(self.secret, "POST", path, ts, nonce, body)
        return {SIGNATURE_HEADER: format_signature_header(ts, nonce, sig), "content-type": "application/json"}

    def post(self, job_id: str, action: str, payload: dict) -> Reply:
        """POST with retries and exponential backoff on network errors and 5xx/429."""
        path = f"/api/pod/jobs/{job_id}/{action}"
        body = json.dumps(payload).encode()
        for attempt in range(self.attempts):
            try:
                r = self.http.post(self.base + path, content=body, headers=self._signed(path, body))
                if r.status_code not in RETRYABLE_STATUS:
                    return Reply(r.status_code, r.json() if r.content else {})
                error = f"HTTP {r.status_code}"
            except httpx.TransportError as e:
                error = f"{type(e).__name__}: {e}"
            if attempt + 1 < self.attempts:
                time.sleep(self.backoff_s * 2 ** attempt)
        raise ControlPlaneError(f"{action} for job {job_id} failed after {self.attempts} attempts: {error}")

    def claim(self, job_id: str) -> ClaimGrant | Reply:
        """The grant, or the refusal (job finished, or leased by another pod) as a Reply."""
        reply = self.post(job_id, "claim", {"pod_id": self.pod_id})
        return ClaimGrant.model_validate(reply.body) if reply.status == 200 else reply

    def report(self, job_id: str, action: str, lease_id: str, **fields) -> dict:
        reply = self.post(job_id, action, {"lease_id": lease_id, **fields})
        if reply.status == 409:
            raise LeaseLost(reply.body.get("status"), reply.body.get("reason", "lease lost"))
        if reply.status != 200:
            raise ControlPlaneError(f"{action} refused ({reply.status}): {reply.body.get('reason')}")
        return reply.body
