"""Spot interruption: the machine is about to go away, so every job stops at its next frame,
stores a checkpoint and hands itself back.

The notice comes as SIGTERM (or SIGINT at a terminal), or from the cloud's metadata endpoint, polled:
AWS `.../latest/meta-data/spot/instance-action` answers 404 until a notice, then 200 with a JSON
body; GCP `.../computeMetadata/v1/instance/preempted` answers "FALSE", then "TRUE".
"""

from __future__ import annotations

import logging
import signal
import threading
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
    def __init__(self, url: str, notice: StopNotice, interval_s: float = 5.0):
        super().__init__(name="spot-poller", daemon=True)
        self.url, self.notice, self.interval_s = url, notice, interval_s
        self.http = httpx.Client(timeout=2, headers={"Metadata-Flavor": "Google"})  # GCP requires it

    def check(self) -> bool:
        try:
            r = self.http.get(self.url)
        except httpx.HTTPError as e:
            log.debug("spot metadata unreachable: %s", e)
            return False
        return is_notice(r.status_code, r.text)

    def run(self) -> None:
        while not self.notice.given:
            if self.check():
                self.notice.give("spot interruption notice")
                log.warning("spot interruption notice", extra={"url": self.url})
            self.notice.wait(self.interval_s)
