"""Headless Chromium driven over the DevTools Protocol, for tests that check rendered pages.

Plain CDP over one websocket (websocket-client), no Selenium/Playwright: the checks we need
(load a page, evaluate JS, screenshot) are a handful of commands.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websocket

BROKEN_IMAGES_JS = (
    "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
)


def chromium_path() -> str:
    """The Chromium binary; a required tool, so a missing one fails rather than skips."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    pytest.fail("Chromium not found on PATH; install it: apt-get install chromium", pytrace=False)


class Browser:
    """Headless Chromium driven over CDP; a context manager."""

    def __init__(self, *, width: int = 1280, height: int = 900, timeout: float = 60.0) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._ws: websocket.WebSocket | None = None
        self._dir: Path | None = None
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        binary = chromium_path()
        self._dir = Path(tempfile.mkdtemp(prefix="dlbench-chromium-"))
        args = [binary, "--headless=new", "--no-sandbox", "--disable-gpu"]
        args += ["--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage"]
        args += ["--allow-file-access-from-files", "--remote-debugging-port=0"]
        args += ["--remote-allow-origins=*", f"--user-data-dir={self._dir / 'profile'}"]
        args += [f"--window-size={self.width},{self.height}", "about:blank"]
        with open(self._dir / "chromium.log", "wb") as log:  # the child keeps its own handle
            self._proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        try:
            self._connect()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ws is not None:
            self._ws.close()
        if self._proc is not None:  # kill the whole group: the wrapper script may not exec
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=5)
                    break
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._ws, self._proc, self._dir = None, None, None

    def _log_tail(self, chars: int = 3000) -> str:
        log = self._dir / "chromium.log" if self._dir else None
        return log.read_text(errors="replace")[-chars:] if log and log.exists() else "(no log)"

    def _connect(self) -> None:
        """Read the port Chromium picked, find the page target and open its websocket."""
        assert self._proc is not None and self._dir is not None
        port_file = self._dir / "profile" / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        pages: list[dict[str, Any]] = []
        while not pages:  # the port file appears first, the about:blank target right after
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Chromium did not start:\n{self._log_tail()}")
            time.sleep(0.05)
            if port_file.exists() and (port := port_file.read_text().split()[:1]):
                url = f"http://127.0.0.1:{port[0]}/json/list"
                with urllib.request.urlopen(url, timeout=10) as resp:
                    pages = [t for t in json.load(resp) if t["type"] == "page"]
        self._ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=self.timeout, suppress_origin=True
        )
        self._send("Page.enable")
        self._send("Runtime.enable")

    def _recv(self, deadline: float) -> dict[str, Any]:
        assert self._ws is not None
        self._ws.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            return json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException:
            raise TimeoutError(f"no CDP message from Chromium\n{self._log_tail()}") from None

    def _send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command; read until its reply, keeping events seen on the way."""
        assert self._ws is not None, "use Browser as a context manager"
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._recv(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def open(self, url: str) -> None:
        """Navigate and wait for the load event, so images and scripts have run."""
        self._events.clear()
        result = self._send("Page.navigate", url=url)
        if result.get("errorText"):
            raise RuntimeError(f"cannot open {url}: {result['errorText']}")
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            try:
                self._events.append(self._recv(deadline))
            except TimeoutError:
                raise TimeoutError(f"{url} did not fire load within {self.timeout} s") from None

    def evaluate(self, expression: str) -> Any:
        """The JSON value of `expression` (promises awaited); JS exceptions raise RuntimeError."""
        reply = self._send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if details := reply.get("exceptionDetails"):
            text = details.get("exception", {}).get("description") or details.get("text")
            raise RuntimeError(f"{expression!r} threw: {text}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float | None = None) -> Any:
        """Poll until `expression` is truthy (JS errors count as not yet: the page may be early)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                last = self.evaluate(expression)
            except RuntimeError as err:
                last = err
            if last and not isinstance(last, RuntimeError):
                return last
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} still not truthy; last value: {last!r}")
            time.sleep(0.25)

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        """A PNG of the viewport, or of the whole scrollable page."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self._send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            params |= {"clip": clip, "captureBeyondViewport": True}
        data = self._send("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def broken_images(self) -> list[str]:
        """Resolved src of every <img> that failed to load (call after open)."""
        return self.evaluate(BROKEN_IMAGES_JS)
