"""A real `wrangler dev` (workerd + D1 + R2 + Queue + Durable Objects) for the whole module set,
with short lease timeouts so expiry and re-queue happen within a test."""

from __future__ import annotations

import json
import time

import pytest
import websockets.sync.client as ws_client

from gpu_export import Client
from gpu_worker.queue_client import QueueClient
from gpu_worker.storage import R2
from scripts.gpu_worker_proc import queue_client, r2_config
from scripts.localstack import LocalStack
from tests import api_helpers

STACK_VARS = {"LEASE_TIMEOUT_S": "3", "HEARTBEAT_INTERVAL_S": "1", "MAX_ATTEMPTS": "2", "REQUEUE_DELAY_S": "1",
              "WS_TICKET_TTL_S": "60", "MAX_UPLOAD_BYTES": str(50 << 20)}


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with LocalStack(persist_dir=tmp_path_factory.mktemp("stack"), vars=dict(STACK_VARS)) as s:
        yield s


@pytest.fixture
def api(stack, client_for) -> Client:
    """A new user of the public API."""
    return client_for(stack)


def pod_put(stack: LocalStack, key: str, data: bytes) -> None:
    """Store an object the way a pod does: the S3 API with the R2 credentials."""
    R2(r2_config(stack)).write(key, data, "video/mp4")


@pytest.fixture
def pod(stack):
    return api_helpers.pod(stack, "pod-a")


@pytest.fixture
def queue(stack):
    return queue_client(stack)


def take_message(queue: QueueClient, job_id: str, timeout=15.0):
    """Pull until this job's message arrives (other tests' messages are left to reappear)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in queue.pull(batch_size=10, visibility_timeout_ms=1000):
            if m.body["job_id"] == job_id:
                return m
        time.sleep(0.2)
    raise AssertionError(f"no queue message for job {job_id} within {timeout} s")


class Socket:
    """A browser-like WebSocket subscriber (ticket in the URL, no headers)."""

    def __init__(self, url: str):
        self.ws = ws_client.connect(url, open_timeout=20, legacy=True)  # a connection kept across calls
        self.events: list[dict] = []

    def next(self, timeout=15.0) -> dict:
        event = json.loads(self.ws.recv(timeout=timeout))
        self.events.append(event)
        return event

    def until(self, kind: str, timeout=15.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.1, deadline - time.monotonic()))
            if event["type"] == kind:
                return event

    def close(self):
        self.ws.close()
