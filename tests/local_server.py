"""A local HTTP server for the tests: `LocalServer` binds 127.0.0.1 on a free port (`url` is its origin),
`start()` serves on a daemon thread and `stop()` shuts it down; `with` does both. `QuietHandler` is a
request handler with a `_send` helper and no request log."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str | None = None):
        super().__init__(("127.0.0.1", 0), handler)
        self.thread_name = name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def start(self) -> "LocalServer":
        threading.Thread(target=self.serve_forever, name=self.thread_name, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class QuietHandler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes | str = b"", content_type: str = "text/plain",
              headers: dict | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass
