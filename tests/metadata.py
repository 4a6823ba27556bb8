"""A cloud metadata endpoint on 127.0.0.1, as EC2's IMDS answers a spot instance: `PUT /latest/api/token`
gives a session token, and `GET /latest/meta-data/spot/instance-action[/<instance>]` answers with that
instance's notice (404 until it has one). With a token set, a GET without it is a 401 (IMDSv2 required).
One server serves any number of instances: each GPU worker polls its own URL (`url_for`)."""

from __future__ import annotations

from typing import Optional

from tests.local_server import LocalServer, QuietHandler

NOTICE_PATH = "/latest/meta-data/spot/instance-action"
AWS_NOTICE = '{"action": "terminate", "time": "2026-11-23T10:00:00Z"}'


class MetadataServer(LocalServer):
    def __init__(self, token: Optional[str] = "imdsv2-token"):
        super().__init__(_Handler, name="metadata")
        self.token = token
        self.token_puts = 0
        self.answer = (404, "")  # for every instance without a notice of its own
        self.notices: dict[str, tuple[int, str]] = {}
        self.start()

    @property
    def url(self) -> str:
        return self.url_for("")

    def url_for(self, instance: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{NOTICE_PATH}" + (f"/{instance}" if instance else "")

    def notify(self, instance: str, body: str = AWS_NOTICE) -> None:
        """Give one instance a spot notice."""
        self.notices[instance] = (200, body)

    def handle_error(self, request, client_address):  # a poller killed mid-answer is no error
        pass


class _Handler(QuietHandler):
    server: MetadataServer

    def do_PUT(self):
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if self.path != "/latest/api/token" or not self.server.token:
            self._send(405, "")
        elif not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            self._send(400, "bad ttl")
        else:
            self.server.token_puts += 1
            self._send(200, self.server.token)

    def do_GET(self):
        if self.server.token and self.headers.get("X-aws-ec2-metadata-token") != self.server.token:
            return self._send(401, "")
        if not self.path.startswith(NOTICE_PATH):
            return self._send(404, "")
        instance = self.path[len(NOTICE_PATH):].strip("/")
        self._send(*self.server.notices.get(instance, self.server.answer))
