"""The headless-browser helper itself: it must see what a reader would, including failures."""

from __future__ import annotations

import base64
import functools
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from browser import Browser

# A valid 1x1 opaque PNG.
PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

PAGE = """<!doctype html>
<html><body>
<h1>Report</h1>
<img src="plots/pixel.png" width="40" height="40">
<img src="plots/missing.png" width="40" height="40">
<table id="results"><tr><th>optimizer</th><th>accuracy</th></tr><tr><td>sgd</td><td>0.9</td></tr></table>
<div style="height: 2000px">tall, so the full-page screenshot is taller than the window</div>
</body></html>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(timeout=30) as b:
        yield b


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "pixel.png").write_bytes(PIXEL_PNG)
    (tmp_path / "index.html").write_text(PAGE)
    return tmp_path


def test_file_page_reports_broken_images_and_screenshots(
    browser: Browser, site: Path, tmp_path: Path
) -> None:
    browser.open((site / "index.html").as_uri())
    broken = browser.broken_images()
    assert len(broken) == 1 and broken[0].endswith("/plots/missing.png"), broken
    assert browser.evaluate("document.querySelector('#results') !== null") is True
    assert browser.evaluate("document.querySelector('#absent') !== null") is False
    shot = browser.screenshot(tmp_path / "page.png")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 500
    height = int.from_bytes(data[20:24], "big")  # IHDR height
    assert height > 2000, height


def test_evaluate_raises_with_the_js_error(browser: Browser) -> None:
    browser.open("about:blank")
    with pytest.raises(RuntimeError, match="boom"):
        browser.evaluate("(() => { throw new Error('boom'); })()")
    assert browser.evaluate("Promise.resolve(41).then(x => x + 1)") == 42


def test_wait_for_late_element_and_timeout(browser: Browser) -> None:
    browser.open("about:blank")
    browser.evaluate(
        "setTimeout(() => { const d = document.createElement('div');"
        " d.id = 'late'; d.textContent = 'ready'; document.body.append(d); }, 500); 0"
    )
    text = browser.wait_for("document.querySelector('#late')?.textContent", timeout=10)
    assert text == "ready"
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="never"):
        browser.wait_for("document.querySelector('#never')", timeout=0.5)
    assert time.monotonic() - start < 3


def test_http_page(browser: Browser, site: Path) -> None:
    handler = functools.partial(QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        browser.open(url)
        assert browser.wait_for("document.querySelector('h1')?.textContent") == "Report"
        assert browser.broken_images() == [
            f"http://127.0.0.1:{server.server_address[1]}/plots/missing.png"
        ]
    finally:
        server.shutdown()
        server.server_close()
