"""The export page's first paint and weight, in headless Chromium against a real local stack.

Opens the page N times, each in a fresh browser context (cold cache), and prints first contentful
paint (target <= 1 s: the ratio to it), when the page is ready (signed in, exports listed), and the
page's own assets (HTML, CSS, JS modules as the Worker serves them) with their sizes.

usage: .venv/bin/python -m bench.editor_page [--runs 5]
"""

import argparse
import statistics
import tempfile
from pathlib import Path

from scripts.localstack import LocalStack
from tests.browser.conftest import Browser

TARGET_FCP_MS = 1000
TIMINGS = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  const own = [nav, ...performance.getEntriesByType('resource')]
    .filter((r) => new URL(r.name).origin === location.origin && ['navigation', 'script', 'link', 'css', 'other'].includes(r.initiatorType)
      && !new URL(r.name).pathname.startsWith('/api/') && !new URL(r.name).pathname.startsWith('/cdn-cgi/'));
  return { fcp: paint ? paint.startTime : null, ready: performance.now(),
           assets: own.map((r) => [new URL(r.name).pathname, r.encodedBodySize, r.decodedBodySize]) };
})()"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalStack(persist_dir=Path(tmp)) as stack:
        browser = Browser(Path(tmp) / "driver.log")
        try:
            runs = []
            for _ in range(args.runs + 1):  # the first warms wrangler dev's asset server
                browser("newContext")
                browser("newPage", url=f"{stack.url}/")
                browser.wait_for("body[data-ready='true']", timeout=60)
                runs.append(browser("evaluate", expression=TIMINGS))
        finally:
            browser.close()
    runs = runs[1:]
    fcp = statistics.median(r["fcp"] for r in runs)
    ready = statistics.median(r["ready"] for r in runs)
    assets = runs[-1]["assets"]
    print(f"first contentful paint: median {fcp:.0f} ms over {len(runs)} cold loads "
          f"(min {min(r['fcp'] for r in runs):.0f}, max {max(r['fcp'] for r in runs):.0f}); "
          f"fcp / {TARGET_FCP_MS} ms target = {fcp / TARGET_FCP_MS:.2f}")
    print(f"ready (signed in, exports listed): median {ready:.0f} ms")
    print(f"page weight: {len(assets)} files, {sum(a[1] for a in assets) / 1000:.1f} kB as sent, "
          f"{sum(a[2] for a in assets) / 1000:.1f} kB decoded")
    for path, sent, decoded in sorted(assets, key=lambda a: -a[2]):
        print(f"  {path:20} {sent / 1000:6.1f} kB sent {decoded / 1000:6.1f} kB")


if __name__ == "__main__":
    main()
