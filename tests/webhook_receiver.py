"""A webhook receiver for the tests: records every request (headers, body, arrival time), answers the
first `fail_first` with `fail_status`, and can take `delay_s` before it answers (a slow receiver)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.lock = threading.Lock()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

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
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up (timeout)

        return Handler

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        wait_until(lambda: len(self.received) >= count, timeout, lambda: f"{len(self.received)} of {count} deliveries",
                   interval=0.05)
        return list(self.received)

    def __enter__(self) -> "Receiver":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
