"""The MLflow UI in a real browser: runs created with `ganlab.tracking` in a test database are served by
`mlflow server` and rendered by headless Chromium; the runs page shows both run names, the run page shows the
logged metric's value. The screenshot is kept under tests/artifacts/ (git-ignored) for a human to look at.
(`tests/test_e2e.py` looks at a real tiny repro's runs the same way: the runs table and the compare page.)

Needs Debian's `chromium` (`.ci/run` installs it when running as root); skipped, with the reason, otherwise."""

from __future__ import annotations

import pytest

from browser import NEEDS_CHROMIUM, dom_containing, keep_screenshot, mlflow_server

METRIC_VALUE = 12.345

pytestmark = [pytest.mark.slow, NEEDS_CHROMIUM]


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
    with mlflow_server(uri, tmp_path / "server.log") as base:
        yield base, experiment_id, alpha


def test_mlflow_ui_shows_runs_and_metric_in_a_browser(server, tmp_path):
    base, experiment_id, alpha = server
    runs_url = f"{base}/#/experiments/{experiment_id}/runs"
    runs_dom = dom_containing(runs_url, tmp_path / "profile1", ["ui-test-alpha", "ui-test-beta"])
    assert "ui-test-alpha" in runs_dom and "ui-test-beta" in runs_dom, runs_dom[-3000:]
    assert "ui-test-gamma" not in runs_dom  # two-sided: only the runs we made

    run_dom = dom_containing(f"{runs_url}/{alpha}", tmp_path / "profile2", [str(METRIC_VALUE)])
    assert str(METRIC_VALUE) in run_dom and "fid" in run_dom and "ui-test-alpha" in run_dom

    keep_screenshot(runs_url, tmp_path / "profile3", "mlflow_runs.png")
