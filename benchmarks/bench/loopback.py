"""A model server on a free loopback port and plain HTTP calls to it: shared by the serving bench and the slow
serving tests (tests/conftest.py)."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

JSON = "application/json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: bytes, content_type: str = JSON, method: str = "POST") -> tuple[int, str]:
    """(status, body) of one request; an HTTP error is a status, not an exception. Gives up after 120 s."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def ping(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/ping", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


@contextmanager
def server(command: Sequence[str], cwd: Path, env: dict[str, str], startup_s: float = 180) -> Iterator[str]:
    """Run command + --host/--port on a free loopback port; yields the base URL once /ping answers, and stops the
    server (terminate, then kill after 30 s) on the way out. A server that exits or stays silent is a RuntimeError
    with its output."""
    port = free_port()
    process = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + startup_s
        while not ping(base):
            if process.poll() is not None:
                raise RuntimeError(f"the model server exited: {process.stdout.read().decode()[-3000:]}")
            if time.time() > deadline:
                raise RuntimeError(f"the model server did not come up within {startup_s:.0f} s")
            time.sleep(1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
