"""Spot interruption: the machine is about to go away, so every job stops at its next frame,
stores a checkpoint and hands itself back.

The notice comes as SIGTERM (or SIGINT at a terminal), or from the cloud's metadata endpoint, polled:
AWS `.../latest/meta-data/spot/instance-action` answers 404 until a notice, then 200 with a JSON
body; GCP `.../computeMetadata/v1/instance/preempted` answers "FALSE", then "TRUE".

AWS instances launched with IMDSv2 required (the default where the AMI declares ImdsSupport v2.0)
answer 401 to a GET without a session token, so for an AWS URL the poller first PUTs `/latest/api/token` and sends the token on
every GET, taking a new one when it expires or is refused. Where the PUT is not served (IMDSv1 only),
it polls without one.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Optional

import httpx

log = logging.getLogger(__name__)


class StopNotice:
    """Set once, from a signal handler or the poller; read by every job between frames."""

    def __init__(self):
        self._event = threading.Event()
        self.reason: Optional[str] = None

    def give(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def given(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


def stop_on_signals(notice: StopNotice) -> None:
    """SIGTERM/SIGINT give the notice; a second one ends the process at once. Main thread only."""

    def handler(signum, frame):
        notice.give(f"pod shutting down ({signal.Signals(signum).name})")
        signal.signal(signum, signal.SIG_DFL)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def is_notice(status: int, body: str) -> bool:
    """Whether a metadata answer announces an interruption: a 404 or a "FALSE" does not."""
    text = body.strip()
    return status == 200 and bool(text) and text.upper() != "FALSE"


class MetadataPoller(threading.Thread):
    TOKEN_TTL_S = 21600  # the longest IMDSv2 allows

    def __init__(self, url: str, notice: StopNotice, interval_s: float = 5.0):
        super().__init__(name="spot-poller", daemon=True)
        self.url, self.notice, self.interval_s = url, notice, interval_s
        self.http = httpx.Client(timeout=2, headers={"Metadata-Flavor": "Google"})  # GCP requires it
        self.token_url = imds_token_url(url)
        self._token: Optional[str] = None
        self._token_expires = 0.0

    def check(self) -> bool:
        try:
            r = self.http.get(self.url, headers=self._token_header())
            if r.status_code == 401 and self.token_url:  # token expired or revoked: one fresh try
                self._token = None
                r = self.http.get(self.url, headers=self._token_header())
        except httpx.HTTPError as e:
            log.debug("spot metadata unreachable: %s", e)
            return False
        return is_notice(r.status_code, r.text)

    def _token_header(self) -> dict[str, str]:
        if not self.token_url:
            return {}
        if self._token is None or time.monotonic() >= self._token_expires:
            self._token = self._new_token()
            self._token_expires = time.monotonic() + self.TOKEN_TTL_S / 2
        return {"X-aws-ec2-metadata-token": self._token} if self._token else {}

    def _new_token(self) -> Optional[str]:
        r = self.http.put(self.token_url, headers={"X-aws-ec2-metadata-token-ttl-seconds": str(self.TOKEN_TTL_S)})
        if r.status_code != 200:
            log.debug("no IMDSv2 token (%s): polling without one", r.status_code)
            return None
        return r.text.strip()

    def run(self) -> None:
        while not self.notice.given:
            if self.check():
                self.notice.give("spot interruption notice")
                log.warning("spot interruption notice", extra={"url": self.url})
            self.notice.wait(self.interval_s)


def imds_token_url(url: str) -> Optional[str]:
    """The IMDSv2 token endpoint that goes with an AWS metadata URL; None for any other cloud."""
    base, sep, _ = url.partition("/latest/meta-data/")
    return f"{base}/latest/api/token" if sep else None
