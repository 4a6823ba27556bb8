"""FaultProxy: an HTTP proxy on 127.0.0.1 in front of the stack for some GPU workers. On pod API
requests it injects, at random and at most `max_faults` times: a delay, a dropped connection before
the request is forwarded, or one dropped after the Worker handled it (the pod never sees the answer).
Every pod request is recorded (job, action, fault, status, and the lease and pod of claims). With no
fault rates it forwards faithfully; `cut` then answers 503 to everything (counted in `refused`), and
`delay_s` holds each answer back (a slow control plane)."""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import Counter
from typing import Optional

import httpx

from tests.local_server import LocalServer, QuietHandler

HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "accept-encoding"}


class FaultProxy(LocalServer):
    cut = False
    delay_s = 0.0

    def __init__(self, upstream: str, rng: Optional[random.Random] = None, delay_rate: float = 0.0,
                 drop_rate: float = 0.0, max_faults: int = 0):
        super().__init__(_ProxyHandler, name="fault-proxy")
        self.upstream, self.rng = upstream, rng or random.Random()
        self.delay_rate, self.drop_rate, self.max_faults = delay_rate, drop_rate, max_faults
        self.records: list[dict] = []
        self.refused = 0
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=30)
        self.start()

    @property
    def faults(self) -> Counter:
        return Counter(r["fault"] for r in self.records if r["fault"])

    def decide(self, action: Optional[str]) -> tuple[Optional[str], float]:
        """The fault for a request (None: none), and the delay if it is one."""
        with self.lock:
            if action is None or sum(self.faults.values()) >= self.max_faults:
                return None, 0.0
            u = self.rng.random()
            if u < self.drop_rate / 2:
                return "drop_before", 0.0
            if u < self.drop_rate:
                return "drop_after", 0.0
            if u < self.drop_rate + self.delay_rate:
                return "delay", self.rng.uniform(0.2, 1.5)
            return None, 0.0

    def record(self, rec: dict) -> None:
        with self.lock:
            self.records.append(rec)

    def handle_error(self, request, client_address):
        """A client that goes away mid-answer (a killed worker) is no error worth a traceback."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _pod_action(path: str) -> tuple[Optional[str], Optional[str]]:
    """(job id, action) of a pod API path, else (None, None)."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    return (parts[3], parts[4]) if len(parts) == 5 and parts[:3] == ["api", "pod", "jobs"] else (None, None)


class _ProxyHandler(QuietHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def do_POST(self):
        proxy = self.server
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if proxy.cut:
            proxy.refused += 1
            return self._send(503, b'{"error": "unavailable", "reason": "cut off"}', "application/json")
        job_id, action = _pod_action(self.path)
        fault, delay = proxy.decide(action)
        rec = {"ts": time.time(), "job_id": job_id, "action": action, "fault": fault, "status": None}
        try:
            payload = json.loads(body or b"{}")
            rec["lease_id"], rec["pod_id"] = payload.get("lease_id"), payload.get("pod_id")
        except ValueError:
            pass
        if fault == "delay":
            time.sleep(delay)
        if fault == "drop_before":
            proxy.record(rec)
            self.close_connection = True
            return
        status, content, ctype = self._forward(body)
        rec["status"] = status
        try:
            reply = json.loads(content)
            rec["ignored"] = bool(reply.get("ignored"))
            if action == "claim" and status == 200:
                rec["lease_id"] = reply.get("lease_id")
        except ValueError:
            pass
        proxy.record(rec)
        if fault == "drop_after":
            self.close_connection = True
            return
        time.sleep(proxy.delay_s)
        self._send(status, content, ctype)

    def _forward(self, body: bytes) -> tuple[int, bytes, str]:
        proxy = self.server
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        try:
            r = proxy.client.request(self.command, proxy.upstream + self.path, content=body, headers=headers)
            return r.status_code, r.content, r.headers.get("content-type", "application/json")
        except httpx.HTTPError as e:  # the stack is down (restarting): what a load balancer says
            return 502, json.dumps({"error": "bad_gateway", "reason": type(e).__name__}).encode(), "application/json"
