"""A webhook receiver for the tests: records every request (headers, body, arrival time), answers the
first `fail_first` with `fail_status`, and can take `delay_s` before it answers (a slow receiver)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from tests.local_server import LocalServer, QuietHandler
from tests.polling import wait_until


@dataclass
class Received:
    at: float
    headers: dict
    body: str
    status: int


@dataclass
class Receiver:
    fail_first: int = 0
    fail_status: int = 500
    delay_s: float = 0.0
    received: list = field(default_factory=list)

    def __post_init__(self):
        self.server = LocalServer(self._handler())
        self.url = f"{self.server.url}/hook"
        self.lock = threading.Lock()

    def _handler(self):
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                arrived = time.time()
                with receiver.lock:
                    failing = len(receiver.received) < receiver.fail_first
                    status = receiver.fail_status if failing else 204
                    receiver.received.append(Received(arrived, {k.lower(): v for k, v in self.headers.items()},
                                                      body, status))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                try:
                    self._send(status)
                except OSError:
                    pass  # the sender gave up (timeout)

        return Handler

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        wait_until(lambda: len(self.received) >= count, timeout, lambda: f"{len(self.received)} of {count} deliveries",
                   interval=0.05)
        return list(self.received)

    def __enter__(self) -> "Receiver":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()
