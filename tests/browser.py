"""Browser helpers for the MLflow UI tests: headless Chromium (Debian's `chromium`) on pages of an `mlflow server`
that a test starts on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
NEEDS_CHROMIUM = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian: apt-get install -y chromium; .ci/run does it as root)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium(url: str, profile: Path, *args: str, budget_ms: int = 20000, window: str = "1400,900") -> str:
    """Run headless Chromium on `url` with a virtual-time budget (the React app fetches runs over AJAX) in a
    window of `window` pixels (the runs table renders only the columns that fit)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", f"--window-size={window}"]
    out = subprocess.run([CHROMIUM, *flags, *args, url], capture_output=True, text=True, timeout=120)
    return out.stdout


def dom_containing(url: str, profile: Path, needles: list[str], window: str = "1400,900") -> str:
    """--dump-dom, polling with a growing budget until every needle is in the DOM (or the last try)."""
    dom = ""
    for budget in (15000, 30000, 60000):
        dom = chromium(url, profile, "--dump-dom", budget_ms=budget, window=window)
        if all(n in dom for n in needles):
            break
    return dom


@contextlib.contextmanager
def mlflow_server(uri: str, log_path: Path) -> Iterator[str]:
    """`mlflow server` on the tracking store `uri`; yields its base URL and stops it (and its workers) after."""
    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [str(mlflow_cli), "server", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"mlflow server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn worker: the group this test started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def keep_screenshot(url: str, profile: Path, name: str, window: str = "1400,900") -> Path:
    """A PNG of `url`, kept under tests/artifacts/ (git-ignored) for a human to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # screenshots are test artifacts, never committed
    shot = ARTIFACTS / name
    chromium(url, profile, f"--screenshot={shot}", window=window)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    return shot
