"""The export page in real headless Chromium, against a real local stack (wrangler dev serves the page
and the API) and real GPU worker processes (short leases, as in tests/worker).

Chromium is driven by tests/browser/driver.mjs (playwright-core on the system Chromium, run with the
project's Node); this module talks to it over pipes, one JSON command per line."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

from gpu_export import Client
from scripts.gpu_worker_proc import GpuWorker
from scripts.localstack import NODE_BIN, LocalStack

from ..clips import make_clip

STACK_VARS = {"LEASE_TIMEOUT_S": "4", "HEARTBEAT_INTERVAL_S": "1", "REQUEUE_DELAY_S": "0", "MAX_ATTEMPTS": "3"}
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts/screenshots"

def pytest_collection_modifyitems(config, items):
    missing = [p for p in (CHROMIUM, ROOT / "node_modules/playwright-core") if not Path(p).exists()]
    if missing:
        skip = pytest.mark.skip(reason=f"browser tests need {', '.join(map(str, missing))} (scripts/setup.sh)")
        for item in items:
            if "tests/browser" in str(item.fspath):
                item.add_marker(skip)


class DriverError(AssertionError):
    pass


class Browser:
    """One Chromium; `page.*` commands act on the current page of the current context."""

    def __init__(self, log_path: Path):
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([str(NODE_BIN / "node"), str(Path(__file__).with_name("driver.mjs"))],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env={**os.environ, "CHROMIUM": CHROMIUM})
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0
        self._answer(0, 60)

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.answers.put(json.loads(line))
        self.answers.put(None)

    def _answer(self, id_: int, timeout: float):
        try:
            answer = self.answers.get(timeout=timeout)
        except queue.Empty:
            raise DriverError(f"browser driver silent for {timeout} s") from None
        if answer is None:
            raise DriverError(f"browser driver exited ({self.proc.poll()}); see {self.log.name}")
        assert answer["id"] == id_, answer
        if not answer["ok"]:
            raise DriverError(answer["error"])
        return answer["result"]

    def __call__(self, op: str, timeout: float = 30, **args):
        """Run one command; `timeout` (s) is also Playwright's own timeout for the action."""
        self.next_id += 1
        self.proc.stdin.write(json.dumps({"id": self.next_id, "op": op, "timeout": timeout * 1000, **args}) + "\n")
        self.proc.stdin.flush()
        return self._answer(self.next_id, timeout + 15)

    def wait_for(self, selector: str, timeout: float = 30, state: str = "visible", frame: str | None = None) -> None:
        """Wait for the selector on the page, or in the iframe `frame` (a selector) of it."""
        try:
            self("waitFor", selector=selector, state=state, timeout=timeout, **({"frame": frame} if frame else {}))
        except DriverError as e:
            raise DriverError(f"{e}\n--- page log ---\n" + "\n".join(self("logs")[-30:])) from None

    def text(self, selector: str, timeout: float = 10) -> str:
        return self("text", selector=selector, timeout=timeout)

    def screenshot(self, name: str, selector: str | None = None) -> Path:
        """The page (or one element of it) as artifacts/screenshots/<name>."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self("screenshot", path=str(path), **({"selector": selector} if selector else {}))
        return path

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with LocalStack(persist_dir=tmp_path_factory.mktemp("browser-stack"), vars=dict(STACK_VARS)) as s:
        yield s


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("browser") / "driver.log")
    try:
        yield b
    finally:
        b.close()


class Page:
    """The export page for one new browser user (a fresh context: its own localStorage and token)."""

    def __init__(self, browser: Browser, stack: LocalStack):
        self.b, self.stack = browser, stack
        self.clients: list[Client] = []

    def open(self, route_sockets: bool = False) -> None:
        """route_sockets: pass the jobs' WebSockets through the driver, which can cut them (cutSockets)."""
        self.b("newPage", url=f"{self.stack.url}/", routeSockets=route_sockets)
        self.b.wait_for("body[data-ready='true']", timeout=30)

    def close(self) -> None:
        self.b("closePage")

    def api(self) -> Client:
        """The API as this page's user (the token the page keeps in localStorage); closed with the page."""
        token = self.b("evaluate", expression="localStorage.getItem('exportToken')")
        self.clients.append(Client(self.stack.url, token))
        return self.clients[-1]

    def upload(self, clip: Path) -> None:
        self.b("setInputFiles", selector="#file", path=str(clip))
        self.b.wait_for(f"#upload-status:has-text('Uploaded {clip.name}')", timeout=30)

    def start_export(self) -> str:
        """Start the export the form describes; the new job's id."""
        ids = "[...document.querySelectorAll('.job')].map(li => li.dataset.jobId)"
        before = set(self.b("evaluate", expression=ids))
        self.b("click", selector="#start")
        try:
            self.b("waitForFunction", expression=f"{ids}.length > {len(before)}", timeout=30)
        except DriverError:
            raise DriverError(f"no new job; the form says: {self.b.text('#form-error')!r}") from None
        [job_id] = [j for j in self.b("evaluate", expression=ids) if j not in before]
        return job_id

    def card(self, job_id: str) -> str:
        return f".job[data-job-id='{job_id}']"


@pytest.fixture
def page(browser, stack):
    browser("newContext")
    p = Page(browser, stack)
    yield p
    # Leave nothing running for the next test's worker to pick up.
    try:
        api = p.api()
        for job in api.list(["pending", "processing"]).jobs:
            api.cancel(job.job_id)
    except Exception:
        pass
    for client in p.clients:
        client.close()


@pytest.fixture
def start_worker(stack, tmp_path):
    workers: list[GpuWorker] = []

    def start(*args: str) -> GpuWorker:
        workers.append(GpuWorker(stack, tmp_path, f"pod-{len(workers) + 1}", "--once", *args))
        return workers[-1]

    yield start
    for w in workers:
        w.kill()


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory) -> Path:
    """3 s, 90 frames."""
    return make_clip(tmp_path_factory.mktemp("clips") / "short.mp4", 3)
