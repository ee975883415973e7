"""The MLflow UI in a real browser: runs created with `ganlab.tracking` in a test database are served by
`mlflow server` and rendered by headless Chromium; the runs page shows both run names, the run page shows the
logged metric's value. The screenshot is kept under tests/artifacts/ (git-ignored) for a human to look at.

Needs Debian's `chromium` (`.ci/run` installs it when running as root); skipped, with the reason, otherwise."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
METRIC_VALUE = 12.345

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install -y chromium; .ci/run does it as root)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium(url: str, profile: Path, *args: str, budget_ms: int = 20000) -> str:
    """Run headless Chromium on `url` with a virtual-time budget (the React app fetches runs over AJAX)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", "--window-size=1400,900"]
    out = subprocess.run([CHROMIUM, *flags, *args, url], capture_output=True, text=True, timeout=120)
    return out.stdout


def dom_containing(url: str, profile: Path, needles: list[str]) -> str:
    """--dump-dom, polling with a growing budget until every needle is in the DOM (or the last try)."""
    dom = ""
    for budget in (15000, 30000, 60000):
        dom = chromium(url, profile, "--dump-dom", budget_ms=budget)
        if all(n in dom for n in needles):
            break
    return dom


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A tracking DB with two runs made through ganlab.tracking, served by `mlflow server` on a free port."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    from ganlab.tracking import ensure_database, stage_run

    with stage_run("train", "ui-test-alpha", {"lr_g": 1e-4}) as run:
        mlflow.log_metric("fid", METRIC_VALUE)
        alpha = run.info.run_id
    with stage_run("evaluate", "ui-test-beta", {"lr_g": 2e-4}):
        mlflow.log_metric("fid", 67.891)
    experiment_id = ensure_database(uri)

    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log = open(tmp_path / "server.log", "w")
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
                pytest.fail(f"mlflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield base, experiment_id, alpha
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn worker: the group this test started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_mlflow_ui_shows_runs_and_metric_in_a_browser(server, tmp_path):
    base, experiment_id, alpha = server
    runs_url = f"{base}/#/experiments/{experiment_id}/runs"
    runs_dom = dom_containing(runs_url, tmp_path / "profile1", ["ui-test-alpha", "ui-test-beta"])
    assert "ui-test-alpha" in runs_dom and "ui-test-beta" in runs_dom, runs_dom[-3000:]
    assert "ui-test-gamma" not in runs_dom  # two-sided: only the runs we made

    run_dom = dom_containing(f"{runs_url}/{alpha}", tmp_path / "profile2", [str(METRIC_VALUE)])
    assert str(METRIC_VALUE) in run_dom and "fid" in run_dom and "ui-test-alpha" in run_dom

    shot = tmp_path / "mlflow_runs.png"
    chromium(runs_url, tmp_path / "profile3", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # screenshots are test artifacts, never committed
    shutil.copy(shot, ARTIFACTS / "mlflow_runs.png")
