"""Headless Chromium for the browser test, driven through chromedriver's W3C WebDriver protocol (plain HTTP and
JSON, so no client library): open a page, wait until it shows a text, run a script, save a screenshot."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import free_port

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
# as environment-notes.md says: no sandbox (root in a container), no GPU, nothing that calls home
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-extensions", "--hide-scrollbars", "--lang=en-US")


def find_chromium() -> tuple[str, str] | None:
    """(chromium, chromedriver) when both are installed (Debian: apt-get install chromium chromium-driver)."""
    browser = next((path for path in CHROMIUM if Path(path).exists()), None) or shutil.which("chromium")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def wait_for_driver(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    """Until chromedriver answers on port (RuntimeError if it exits, TimeoutError after `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"chromedriver exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5).close()
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"chromedriver did not answer within {seconds:.0f} s") from None
            time.sleep(0.5)


class Browser:
    """One headless Chromium session: `with Browser(width, height) as browser: browser.open(url) ...`."""

    def __init__(self, width: int = 1600, height: int = 1000):
        found = find_chromium()
        if found is None:
            raise FileNotFoundError("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
        self.binary, driver = found
        self.size = width, height
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        self.driver = subprocess.Popen([driver, f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self.session = ""

    def __enter__(self) -> Browser:
        wait_for_driver(self.port, self.driver)
        width, height = self.size
        options = {"binary": self.binary,
                   "args": [*FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}"]}
        answer = self.call("POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}})
        self.session = answer["sessionId"]
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.session:
                self.call("DELETE", f"/session/{self.session}")
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=30)
            shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method: str, path: str, body: dict | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"webdriver {method} {path}: {error.read().decode()[:2000]}") from None

    def open(self, url: str) -> None:
        self.call("POST", f"/session/{self.session}/url", {"url": url})

    def script(self, source: str, *args: Any) -> Any:
        """Run a function body in the page (`return ...` gives its value back; arguments are `arguments[i]`)."""
        return self.call("POST", f"/session/{self.session}/execute/sync", {"script": source, "args": list(args)})

    def text(self) -> str:
        return self.script("return document.body ? document.body.innerText : ''")

    def wait_for(self, *texts: str, seconds: float = 90) -> str:
        """The page's text once it shows every one of texts (a single-page app renders after its requests)."""
        deadline = time.monotonic() + seconds
        while True:
            shown = self.text()
            missing = [text for text in texts if text not in shown]
            if not missing:
                return shown
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never showed {missing}; it shows:\n{shown[:3000]}")
            time.sleep(0.5)

    def click_text(self, text: str, selector: str = "button, [role=button], a, label, span") -> None:
        """Click the first element of `selector` whose own text is `text`."""
        found = self.script("""
            const wanted = arguments[0];
            for (const el of document.querySelectorAll(arguments[1])) {
              if (el.innerText && el.innerText.trim() === wanted) { el.click(); return true; }
            }
            return false;""", text, selector)
        if not found:
            raise LookupError(f"no element {selector!r} with the text {text!r}")

    def resize(self, width: int, height: int) -> None:
        self.call("POST", f"/session/{self.session}/window/rect", {"width": width, "height": height})

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("GET", f"/session/{self.session}/screenshot")))
        return path
