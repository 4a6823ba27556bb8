"""What the worker prints on stderr: at a terminal, readable log lines scrolling above one live
progress line; otherwise (a container's log collector) one JSON object per line.

Log calls add fields with `extra={...}`: they become keys of the JSON line.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional, TextIO

BAR_WIDTH = 20
JSON_PROGRESS_EVERY_S = 5.0
_RECORD_FIELDS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


@dataclass
class JobProgress:
    frame: int
    total: int
    fps: float
    eta_s: Optional[float]

    def text(self, job_id: str) -> str:
        done = self.frame / self.total if self.total else 0.0
        bar = "#" * round(done * BAR_WIDTH)
        eta = "" if self.eta_s is None else f" ETA {self.eta_s:.0f}s"
        return f"{job_id} [{bar:.<{BAR_WIDTH}}] {done:4.0%} {self.frame}/{self.total} {self.fps:.0f} fps{eta}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
                "msg": record.getMessage(), **{k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS}}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class JsonProgress:
    """Progress as log lines, at most one per job every few seconds."""

    def __init__(self):
        self._log = logging.getLogger("gpu_worker.progress")
        self._last: dict[str, float] = {}

    def update(self, job_id: str, progress: JobProgress) -> None:
        now = time.monotonic()
        if now - self._last.get(job_id, 0.0) >= JSON_PROGRESS_EVERY_S:
            self._last[job_id] = now
            self._log.info("progress", extra={"job_id": job_id, **vars(progress)})

    def finish(self, job_id: str) -> None:
        self._last.pop(job_id, None)


class Terminal(logging.Handler):
    """Log lines, with the running jobs' progress bars redrawn below them on one line."""

    def __init__(self, stream: TextIO):
        super().__init__()
        self.stream = stream
        self.jobs: dict[str, JobProgress] = {}
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
        self._draw_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        fields = {k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS}
        text = self.format(record) + "".join(f" {k}={v}" for k, v in fields.items())
        self._redraw(text + "\n")

    def update(self, job_id: str, progress: JobProgress) -> None:
        self.jobs[job_id] = progress
        self._redraw()

    def finish(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        self._redraw()

    def _redraw(self, above: str = "") -> None:
        width = shutil.get_terminal_size().columns - 1
        line = " | ".join(p.text(job) for job, p in list(self.jobs.items()))[:width]
        with self._draw_lock:
            self.stream.write(f"\r\033[K{above}{line}")
            self.stream.flush()


ProgressView = Terminal | JsonProgress  # where job progress is shown


def setup(stream: TextIO = sys.stderr, level: int = logging.INFO) -> ProgressView:
    """Configure logging for the worker process; returns where job progress is shown."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    if stream.isatty():
        view = Terminal(stream)
        root.addHandler(view)
        return view
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    return JsonProgress()
