"""The export page end to end: a person's clicks in Chromium, the real control plane, real renders."""

from __future__ import annotations

import os
import signal
import time

import av
import pytest

from jobspec import JobView

from ..clips import FPS, make_clip
from ..polling import wait_until
from ..api_helpers import video_bytes


def decoded_frames(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def finished(api, job_id: str, worker) -> JobView:
    job = api.get(job_id)
    assert job.status == "complete", f"{job}\n--- worker log ---\n{worker.log_path.read_text()[-3000:]}"
    return job


def test_upload_export_follow_and_download(page, browser, short_clip, start_worker, tmp_path):
    page.open()
    # Force the multipart path (normally for files over 100 MB): presigned parts, ETags, complete.
    browser("evaluate", expression="document.documentElement.dataset.multipartThreshold = '1'")
    browser("requests")
    page.upload(short_clip)
    assert "POST /api/videos/multipart/complete" in browser("requests")
    assert browser.text("#videos").startswith("short.mp4")

    job_id = page.start_export()
    card = page.card(job_id)
    browser.wait_for(f"{card} .badge:has-text('Waiting for a GPU')")
    worker = start_worker()

    browser.wait_for(f"{card}[data-status='complete']", timeout=90)
    assert browser.text(f"{card} .percent") == "100%"
    assert browser("evaluate", expression=f"document.querySelector(\"{card} progress\").value") == 100
    browser.wait_for(f"{card} .eta:has-text('Rendered 90 frames')")
    browser.screenshot("1-export-complete.png")
    assert worker.wait(30) == 0

    saved = tmp_path / "download.mp4"
    name = browser("download", selector=f"{card} .download", path=str(saved), timeout=30)
    assert name == f"export-{job_id}.mp4"
    assert decoded_frames(saved) == 3 * FPS


def test_completed_while_away_toast(page, browser, short_clip, start_worker, tmp_path):
    page.open()
    page.upload(short_clip)
    job_id = page.start_export()
    browser.wait_for(f"{page.card(job_id)} .badge:has-text('Waiting for a GPU')")
    api = page.api()
    page.close()  # the tab is closed while no GPU worker runs

    worker = start_worker()
    assert worker.wait(90) == 0
    finished(api, job_id, worker)
    assert [j.job_id for j in api.active().finished_while_away] == [job_id]

    page.open()
    toast = ".toast:has-text('Export completed while you were away')"
    browser.wait_for(toast)
    browser.wait_for(f"{toast} button:has-text('Download')")
    browser.screenshot("2-completed-while-away.png")
    wait_until(lambda: api.active().model_dump() == {"active": [], "finished_while_away": []}, 10,
               "the job is marked seen")

    saved = tmp_path / "away.mp4"
    browser("download", selector=f"{toast} button:has-text('Download')", path=str(saved), timeout=30)
    assert decoded_frames(saved) == 3 * FPS

    page.close()  # seen: the next visit lists the job without a toast
    page.open()
    browser.wait_for(f"{page.card(job_id)}[data-status='complete']")
    assert browser("evaluate", expression="document.querySelectorAll('.toast').length") == 0


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """20 s: 600 frames, rendered in 30-frame checkpoint segments."""
    return make_clip(tmp_path_factory.mktemp("clips") / "long.mp4", 20)


def test_killed_worker_resumes_and_the_page_says_so(page, browser, long_clip, start_worker):
    page.open()
    page.upload(long_clip)
    job_id = page.start_export()
    card = page.card(job_id)
    api = page.api()

    first = start_worker("--checkpoint-frames", "30")
    wait_until(lambda: api.get(job_id).checkpoint, 60, "a first checkpoint", interval=0.05)
    first.signal(signal.SIGKILL)
    first.wait(10)
    job = api.get(job_id)
    stored, total = job.checkpoint.frame, job.total_frames
    assert 0 < stored < total and job.status == "processing"

    second = start_worker("--checkpoint-frames", "30")  # claims the job once the first one's lease expires
    expected = f"Resumed from {100 * stored // total}% (attempt 2)"
    browser.wait_for(f"{card} .note:has-text('{expected}')", timeout=60)
    browser.screenshot("3-resumed.png")

    assert second.wait(120) == 0
    job = finished(api, job_id, second)
    assert job.resume_count == 1 and job.attempts == 1
    browser.wait_for(f"{card}[data-status='complete']", timeout=30)
    assert browser.text(f"{card} .percent") == "100%"


def test_a_dropped_socket_falls_back_to_polling_and_reconnects(page, browser, short_clip, start_worker):
    """The network drops the jobs' sockets and refuses new ones: each card keeps up by polling, retries
    with a new ticket and growing delays, finishes by polling alone; once the network is back, a
    card reconnects and stops polling."""
    page.open(route_sockets=True)
    page.upload(short_clip)
    first = page.start_export()
    api = page.api()
    wait_until(lambda: sockets(browser, first) == [False], 30, "the first job's socket")

    browser("cutSockets")
    browser("requests")  # from here on
    wait_until(lambda: len(socket_times(browser, first, refused=True)) >= 3, 30, "three reconnect attempts")
    attempts = socket_times(browser, first, refused=True)
    assert attempts[1] - attempts[0] >= 1.0 and attempts[2] - attempts[1] >= 2.0, attempts  # 1 s, 2 s, 4 s x jitter
    down = browser("requests")
    assert down.count(f"POST /api/jobs/{first}/ws-ticket") >= 3, down  # a new ticket for every attempt
    assert f"GET /api/jobs/{first}" in down, down  # polling
    browser.wait_for(f"{page.card(first)}[data-live='polling'] .live:has-text('Live updates interrupted; checking every 3 s.')")
    browser.screenshot("6-socket-down.png")

    worker = start_worker()
    assert worker.wait(120) == 0
    finished(api, first, worker)
    browser.wait_for(f"{page.card(first)}[data-status='complete'][data-live='socket']", timeout=15)  # by polling
    assert browser.text(f"{page.card(first)} .job-detail").startswith("Rendered 90 frames")
    assert sockets(browser, first).count(False) == 1
    tried = len(sockets(browser, first))

    second = page.start_export()  # its first socket is refused too
    wait_until(lambda: sockets(browser, second), 30, "the second job's socket attempt")
    assert sockets(browser, second)[0] is True
    browser("restoreSockets")
    wait_until(lambda: False in sockets(browser, second), 30, "the second job's socket, reconnected")
    browser.wait_for(f"{page.card(second)}[data-live='socket']", timeout=15)  # its snapshot arrived
    browser("requests")
    time.sleep(4)  # longer than the page's 3 s poll
    calm = browser("requests")
    assert f"GET /api/jobs/{second}" not in calm, calm  # the socket is back: no more polling

    worker = start_worker()
    assert worker.wait(120) == 0
    finished(api, second, worker)
    browser.wait_for(f"{page.card(second)}[data-status='complete']", timeout=15)
    assert len(sockets(browser, first)) == tried  # a finished job's card never reconnects


def sockets(browser, job_id: str) -> list[bool]:
    """For each of the job's socket attempts so far: whether the network refused it."""
    return [s["refused"] for s in browser("socketLog")["log"] if f"/api/jobs/{job_id}/ws" == s["path"]]


def socket_times(browser, job_id: str, refused: bool) -> list[float]:
    return [s["t"] / 1000 for s in browser("socketLog")["log"]
            if f"/api/jobs/{job_id}/ws" == s["path"] and s["refused"] is refused]


def test_errors_are_said_in_words(page, browser, start_worker, tmp_path):
    page.open()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    page.b("setInputFiles", selector="#file", path=str(notes))
    browser.wait_for("#upload-status.error:has-text('Upload refused: wrong file type. text/plain is not accepted')")

    huge = tmp_path / "huge.mp4"
    with open(huge, "wb") as f:
        f.truncate(6 * 10**9)  # sparse: over the 5 GiB limit without the bytes
    page.b("setInputFiles", selector="#file", path=str(huge))
    browser.wait_for("#upload-status.error:has-text('Upload refused: the file is too large (6.0 GB; the limit is 5.4 GB)')")
    browser.screenshot("4-upload-refused.png")

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(video_bytes(os.urandom(64 << 10)))  # an MP4's first bytes, then noise: the pod refuses it
    page.upload(broken)
    job_id = page.start_export()
    card = page.card(job_id)
    assert start_worker().wait(60) == 0
    browser.wait_for(f"{card}[data-status='error'] .job-error:has-text('Export failed: input ')", timeout=30)
    browser.wait_for(f"{card} .retry")
    browser.screenshot("5-job-failed.png")
