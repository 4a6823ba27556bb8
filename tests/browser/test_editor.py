"""The visual editor as a person uses it, in Chromium against the real stack and real GPU worker processes:
upload, drag shapes over the video at two times, export, watch the result; then the rendered frames are
checked against where the shapes were dragged, and the page's live preview against the rendered frames."""

from __future__ import annotations

import base64
import io
import json
import shutil
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from gpu_worker.processors.overlay import OverlayProcessor
from jobspec import OverlayParams
from scripts.localstack import seed_demo

from ..clips import FPS, make_clip
from .conftest import SCREENSHOTS

TOLERANCE = 0.02  # of the frame
MIN_PSNR_DB = 30.0


@pytest.fixture(scope="module")
def bright_clip(tmp_path_factory):
    """3 s of testsrc2 with luma lifted to 108..217, so a dimmed pixel always differs from a lit one."""
    return make_clip(tmp_path_factory.mktemp("clips") / "bright.mp4", 3, video_filter="lutyuv=y=val/2+100")


class Editor:
    """The editor on the page: what a person sees and does."""

    def __init__(self, page, browser):
        self.page, self.b = page, browser

    def load(self, clip) -> None:
        self.page.upload(clip)
        self.b.wait_for("#stage[data-state='ready']", timeout=30)

    def goto(self, seconds: float) -> int:
        """Type a time into the time field and press Enter; waits for that frame on the stage."""
        frame = round(seconds * FPS)
        self.b("fill", selector="#time", value=f"{seconds}")
        self.b("press", key="Enter")
        self.b("waitForFunction", expression=f"document.querySelector('#stage').dataset.frame === '{frame}'", timeout=10)
        return frame

    def stage_point(self, fx: float, fy: float) -> list[float]:
        box = self.b("box", selector="#stage")
        return [box["x"] + fx * box["width"], box["y"] + fy * box["height"]]

    def centre_of(self, selector: str) -> list[float]:
        box = self.b("box", selector=selector)
        return [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]

    def drag(self, selector: str, to: tuple[float, float], touch: bool = False) -> None:
        """Drag the middle of a shape on the stage to `to` (fractions of the frame)."""
        self.b("touchDrag" if touch else "mouseDrag", **{"from": self.centre_of(selector), "to": self.stage_point(*to)})

    def markers(self) -> int:
        return self.b("evaluate", expression="document.querySelectorAll('#markers .marker').length")

    def spec(self) -> dict:
        """The job as the page's Advanced panel shows it."""
        self.b("evaluate", expression="document.querySelector('#advanced').open = true")
        self.b("click", selector="#json-from-form")
        return json.loads(self.b("evaluate", expression="document.querySelector('#json').value"))

    def preview_rgb(self) -> np.ndarray:
        url = self.b("evaluate", expression="document.querySelector('#preview').toDataURL('image/png')")
        png = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
        return cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def axe(self, state: str) -> None:
        serious = [v for v in self.b("axe") if v["impact"] in ("serious", "critical")]
        assert not serious, f"{state}: {json.dumps(serious, indent=1)}"

    def export_and_watch(self, start_worker) -> tuple[str, bytes]:
        """Start the export, let a GPU worker render it, play the result in its card; the job id and the
        rendered file."""
        job_id = self.page.start_export()
        card = self.page.card(job_id)
        worker = start_worker()
        self.b.wait_for(f"{card}[data-status='complete']", timeout=120)
        assert worker.wait(30) == 0
        video = f"{card} .job-result video"
        self.b.wait_for(video, timeout=15)
        self.b("click", selector=video)  # the video's own controls: a click plays it
        self.b("waitForFunction", expression=f"(v => !v.paused && v.currentTime > 0.3)(document.querySelector(\"{video}\"))",
               timeout=15)
        with tempfile.TemporaryDirectory() as tmp:
            return job_id, self.page.api().download(job_id, Path(tmp) / "rendered.mp4").read_bytes()


def frames(data: bytes, fmt: str) -> list[np.ndarray]:
    """Every frame of a video: 'gray' is the luma plane as stored (limited range), 'rgb24' for pixels."""
    out = []
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            if fmt == "gray":
                plane = frame.planes[0]
                out.append(np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width])
            else:
                out.append(frame.to_ndarray(format=fmt))
    return out


def spotlight_centre(rendered: np.ndarray, source: np.ndarray) -> tuple[float, float]:
    """Where the undimmed ellipse is: the centroid of the pixels the render kept at their source level."""
    gain = (rendered.astype(float) - 16) / (source.astype(float) - 16)
    ys, xs = np.nonzero(gain > 0.7)
    h, w = source.shape
    return (xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h


def crop_centre(rendered: np.ndarray, source: np.ndarray, size: tuple[float, float]) -> tuple[float, float]:
    """Where in the source frame the rendered (cropped, resized) frame came from: the rendered frame shrunk
    back to the crop's size (fractions of the frame), matched against the source."""
    h, w = source.shape
    cw, ch = round(size[0] * w), round(size[1] * h)
    template = cv2.resize(rendered, (cw, ch), interpolation=cv2.INTER_AREA)
    scores = cv2.matchTemplate(source, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (x, y) = cv2.minMaxLoc(scores)
    assert best > 0.6, best  # a wrong place would not match this well
    return (x + cw / 2) / w, (y + ch / 2) / h


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def near(measured, expected, what: str) -> None:
    assert abs(measured[0] - expected[0]) <= TOLERANCE and abs(measured[1] - expected[1]) <= TOLERANCE, \
        f"{what}: at {measured}, dragged to {expected}"


def record(name: str, value) -> None:
    """Figures the README quotes, kept with the screenshots."""
    path = SCREENSHOTS.parent / "editor-measurements.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[name] = value
    path.write_text(json.dumps(figures, indent=1))


def test_spotlight_dragged_at_two_times_is_where_the_render_puts_it(page, browser, bright_clip, start_worker):
    page.open()
    editor = Editor(page, browser)
    editor.load(bright_clip)
    assert editor.markers() == 1  # the region starts with one keyframe
    dragged = {0.5: (0.25, 0.35), 2.0: (0.72, 0.62)}
    for seconds, to in dragged.items():
        editor.goto(seconds)
        editor.drag("#shapes .region.selected", to)  # paused: the drag keys the spotlight at the playhead
    assert editor.markers() == 3
    browser.text("#editor-status:has-text('Keyframe 3 at 0:02.00')")
    browser.screenshot("editor-spotlight.png", selector=".editor")
    editor.axe("spotlight")
    keyframes = editor.spec()["params"]["highlight_regions"][0]["keyframes"]
    assert [k["t"] for k in keyframes] == [0, 0.5, 2]

    job_id, rendered = editor.export_and_watch(start_worker)
    browser.screenshot("editor-result-playing.png")
    editor.axe("result playing")
    out, src = frames(rendered, "gray"), frames(bright_clip.read_bytes(), "gray")
    assert len(out) == 3 * FPS
    for seconds, to in dragged.items():
        n = round(seconds * FPS)
        near(spotlight_centre(out[n], src[n]), to, f"spotlight at {seconds} s")

    # The live preview against the worker's frames at the same times: as rendered (after the encoder), and
    # as the worker's overlay processor makes them from the same decoded frames (before it).
    rgb, i420 = frames(rendered, "rgb24"), frames(bright_clip.read_bytes(), "yuv420p")
    processor = OverlayProcessor(OverlayParams(**editor.spec()["params"]), 256, 144)
    figures, unencoded = {}, {}
    for seconds in (0.25, 0.5, 1.0, 1.5, 2.0, 2.5):
        n = editor.goto(seconds)
        preview = editor.preview_rgb()
        figures[seconds] = round(psnr(preview, rgb[n]), 2)
        processor.spotlight(frame := i420[n].copy(), n / FPS)
        unencoded[seconds] = round(psnr(preview, av.VideoFrame.from_ndarray(frame, format="yuv420p").to_ndarray(format="rgb24")), 2)
    record("spotlight_preview_vs_render_psnr_db", figures)
    record("spotlight_preview_vs_unencoded_processor_psnr_db", unencoded)
    assert min(figures.values()) >= MIN_PSNR_DB, figures


def test_framing_crop_dragged_at_two_times_is_what_the_render_shows(page, browser, bright_clip, start_worker):
    page.open()
    editor = Editor(page, browser)
    editor.load(bright_clip)
    browser("check", selector="input[name='type'][value='framing']")
    browser("select", selector="#output-size", value="custom")
    browser("fill", selector="#output-width", value="144")
    browser("fill", selector="#output-height", value="256")
    browser("press", key="Enter")
    browser("select", selector="#upscale-model", value="none")
    assert "resized" in browser.text("#upscale-note")

    # Make the window smaller by its corner, then drag it to two places at two times.
    corner = browser("box", selector="#shapes .handle")
    browser("mouseDrag", **{"from": [corner["x"] + corner["width"] / 2, corner["y"] + corner["height"] / 2],
                            "to": editor.stage_point(0.55, 0.7)})
    dragged = {0.5: (0.2, 0.4), 2.5: (0.75, 0.6)}
    for seconds, to in dragged.items():
        editor.goto(seconds)
        editor.drag("#shapes .crop", to)
    browser.screenshot("editor-framing.png", selector=".editor")
    editor.axe("framing")
    crops = editor.spec()["params"]["crop_keyframes"]
    assert [k["t"] for k in crops] == [0, 0.5, 2.5]
    size = (crops[1]["w"], crops[1]["h"])
    assert size[0] < 0.3 and size[0] * 256 / (size[1] * 144) == pytest.approx(144 / 256, rel=1e-3)
    framed = browser("evaluate", expression="(c => [c.width, c.height])(document.querySelector('#framed'))")
    assert framed[0] / framed[1] == pytest.approx(144 / 256, rel=0.01)

    _, rendered = editor.export_and_watch(start_worker)
    out, src = frames(rendered, "gray"), frames(bright_clip.read_bytes(), "gray")
    assert out[0].shape == (256, 144)
    for seconds, to in dragged.items():
        n = round(seconds * FPS)
        near(crop_centre(out[n], src[n], size), to, f"crop at {seconds} s")


def test_two_clip_reel_in_and_out_from_the_playhead_reordered_by_drag(page, browser, bright_clip, start_worker, tmp_path):
    page.open()
    editor = Editor(page, browser)
    editor.load(shutil.copyfile(bright_clip, tmp_path / "bright (1).mp4"))  # a name that ends in parentheses
    browser("check", selector="input[name='type'][value='multi_clip']")
    plan = [("First", 0.2, 1.2, 0.6, (0.3, 0.4)), ("Second", 1.5, 2.7, 2.0, (0.7, 0.6))]
    for title, start, end, key_at, to in plan:
        editor.goto(start)
        browser("click", selector="#add-clip")
        editor.goto(end)
        browser("click", selector="#editor-title")  # off the field: the keys below are shortcuts
        browser("press", key="o")  # out point at the playhead
        browser("fill", selector="#clip-title", value=title)
        editor.goto(key_at)
        editor.drag("#shapes .region.selected", to)
    assert browser.text("#reel-length") == "Reel: 2 clips, 2.20 s in all."
    assert browser.text("#clips > li:nth-child(1) .pick span").endswith(" · bright (1).mp4")  # the file's whole name

    grip = editor.centre_of("#clips > li:nth-child(2) .grip")
    first = browser("box", selector="#clips > li:nth-child(1)")
    browser("mouseDrag", **{"from": grip, "to": [grip[0], first["y"] + 2]})
    browser.wait_for("#clips > li:nth-child(1) .pick:has-text('1. Second')")
    browser.screenshot("editor-reel.png", selector=".editor")
    editor.axe("multi-clip reel")
    clips = editor.spec()["params"]["clips"]
    assert [(c["title"], c["start_s"], c["end_s"]) for c in clips] == [("Second", 1.5, 2.7), ("First", 0.2, 1.2)]

    _, rendered = editor.export_and_watch(start_worker)
    out, src = frames(rendered, "gray"), frames(bright_clip.read_bytes(), "gray")
    firsts, counts = [45, 6], [36, 30]
    assert len(out) == sum(counts)
    for (title, *_, key_at, to), reel_start in ((plan[1], 0), (plan[0], counts[0])):
        n = round(key_at * FPS)
        first = firsts[0] if title == "Second" else firsts[1]
        near(spotlight_centre(out[reel_start + n - first], src[n]), to, f"{title} at {key_at} s")


def test_phone_width_touch_and_keyboard(page, browser, short_clip):
    browser("newContext", width=360, height=780, touch=True)
    page.open()
    editor = Editor(page, browser)
    editor.load(short_clip)
    assert browser("evaluate", expression="document.documentElement.scrollWidth") <= 360
    editor.goto(1.0)
    editor.drag("#shapes .region.selected", (0.3, 0.7), touch=True)
    assert editor.markers() == 2
    values = [float(browser("evaluate", expression=f"document.querySelector('#keyframe-fields [data-effect=overlay] [data-field={f}]').value"))
              for f in ("x", "y")]
    assert values == pytest.approx([0.3, 0.7], abs=0.01)
    stage = browser("box", selector="#stage")
    handle = editor.centre_of("#shapes .handle[data-role='rx']")  # the ellipse's side handle, 10 % wider
    browser("touchDrag", **{"from": handle, "to": [handle[0] + 0.1 * stage["width"], handle[1]]})
    rx = float(browser("evaluate", expression="document.querySelector('#keyframe-fields [data-effect=overlay] [data-field=rx]').value"))
    assert rx == pytest.approx(0.22, abs=0.01)
    browser("click", selector="#dim")
    browser("press", key="End")
    assert browser.text("#dim-value") == "100%"
    assert editor.spec()["params"]["highlight_regions"][0]["dim"] == 1
    browser("evaluate", expression="document.querySelector('#advanced').open = false")
    browser.screenshot("editor-phone.png")
    editor.axe("phone")

    browser("click", selector="#editor-title")
    browser("press", key="ArrowRight")
    browser("waitForFunction", expression="document.querySelector('#stage').dataset.frame === '31'", timeout=10)
    browser("press", key="k")
    assert editor.markers() == 3 and browser.text("#editor-status") == "Keyframe 3 at 0:01.03."
    browser("press", key="Delete")
    assert editor.markers() == 2

    marker = editor.centre_of("#markers .marker[data-index='1']")  # the keyframe at 1 s, dragged to about 2 s
    scrubber = browser("box", selector="#scrubber")
    browser("touchDrag", **{"from": marker, "to": [scrubber["x"] + scrubber["width"] * 2 / 3, marker[1]]})
    moved = float(browser("evaluate", expression="document.querySelector('#keyframe-fields [data-field=t]').value"))
    assert moved == pytest.approx(2.0, abs=0.1) and round(moved * FPS) == pytest.approx(moved * FPS, abs=1e-6)
    browser("press", key="ArrowLeft")
    browser("waitForFunction", expression="document.querySelector('#stage').dataset.frame === '30'", timeout=10)
    browser("press", key=" ")
    browser("waitForFunction", expression="document.querySelector('#play').getAttribute('aria-pressed') === 'true'"
            " && Number(document.querySelector('#stage').dataset.frame) > 33", timeout=10)
    browser("press", key=" ")
    browser("waitForFunction", expression="document.querySelector('#play').getAttribute('aria-pressed') === 'false'", timeout=5)

    origin = browser("evaluate", expression="location.origin")
    assets = browser("evaluate", expression="performance.getEntriesByType('resource').map(r => [r.name, r.encodedBodySize, r.initiatorType])")
    assert all(name.startswith(origin) for name, *_ in assets), assets  # no CDN


def test_the_dev_demo_link_opens_the_editor_on_the_demo_clip(page, browser, stack, tmp_path):
    """`make dev` prints a link for a seeded user; it opens on the editor with the demo clip loaded."""
    demo = seed_demo(stack, tmp_path, wait_s=0)  # no GPU worker here: the demo export stays pending
    browser("newPage", url=demo["link"])
    browser("click", selector="#signin-link-accept")  # the link signs in as the demo user once confirmed
    browser.wait_for("body[data-ready='true']", timeout=30)
    browser.wait_for("#stage[data-state='ready'][data-frame='0']", timeout=30)
    assert browser.text("#input-video option:checked").startswith("demo-clip.mp4")
    assert browser.text("#clock").startswith("0:00.00 / 0:03.00 · frame 1 of 90")
    assert browser("evaluate", expression="(c => [c.width, c.height])(document.querySelector('#preview'))") == [640, 360]
