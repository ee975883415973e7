"""Parallel experiments: three `dvc exp run --queue` experiments run by `dvc queue start -j 2` in a copy of the
repository all land, with their metrics, in one MLflow store: the main repository's SQLite database, which the
first concurrent runs create exactly once, or a real PostgreSQL server (a team's shared store), with the same
run layout.

Short form for CI: tiny params (3 batches per epoch, 2 epochs) and the target `train@vanilla` (its upstream
fetch/prepare are reproduced once beforehand and come from the cache), so the experiments differ only in
the training stage that logs to MLflow. Queued experiments run in `.dvc/tmp/exps/...` copies;
`ganlab.paths.main_repo_root` maps them back to the main repository.

The PostgreSQL server is Debian's `postgresql` (`.ci/run` installs it when missing), started here on a free
loopback port in a temporary cluster (as the `postgres` user when the tests run as root: initdb refuses root).
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from browser import free_port
from repo_copy import _run, copy_repo

pytestmark = pytest.mark.slow

LEARNING_RATES = {"lr2": "2.0e-4", "lr3": "3.0e-4", "lr4": "4.0e-4"}
# tags whose values differ from run to run (or between stores); their keys are part of the layout
VOLATILE_TAGS = ("mlflow.", "ganlab.pid", "ganlab.host", "git.commit", "dvc.exp_name")


def _tiny(params: dict) -> None:
    params["max_batches_per_epoch"] = 3
    params["vanilla"]["num_epochs"]["quick"] = 2
    params["experiments"]["vanilla"].pop("seeds", None)  # one training seed: one run per experiment


def _run_queue(root: Path, tracking_uri: str | None):
    """Copy the repository under `root`, queue the three experiments and run them two at a time, logging to
    `tracking_uri` (None: the repository's SQLite database). Returns (dest, `dvc queue status`, logs per name)."""
    dest, env = copy_repo(root / "ganlab", _tiny)
    dvc = str(Path(sys.executable).parent / "dvc")
    # Upstream stages once, committed, so that every experiment restores them from the shared cache.
    _run([dvc, "repro", "prepare@mnist"], dest, env)
    _run(["git", "add", "-A"], dest, env)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "prepared"], dest, env)
    if tracking_uri is None:
        assert not (dest / "mlflow.db").exists()  # the first queued runs create it, concurrently
    else:  # a server: its schema is created once, before the parallel runs (README, "Working as a team")
        env["MLFLOW_TRACKING_URI"] = tracking_uri
        _run([sys.executable, "-m", "ganlab.tracking", "--init"], dest, env)
    for name, lr in LEARNING_RATES.items():
        _run([dvc, "exp", "run", "--queue", "train@vanilla", "-n", name, "-S", f"vanilla.optimizer.lr_g={lr}"], dest, env)
    _run([dvc, "queue", "start", "-j", "2"], dest, env)
    try:
        deadline = time.monotonic() + 900
        while True:
            status = _run([dvc, "queue", "status"], dest, env).stdout
            if not any(word in status for word in ("Queued", "Running")):
                break
            assert time.monotonic() < deadline, f"queue not done after 900 s:\n{status}"
            time.sleep(5)
    finally:
        subprocess.run([dvc, "queue", "stop"], cwd=dest, env=env, capture_output=True, timeout=120)
    logs = {name: subprocess.run([dvc, "queue", "logs", name], cwd=dest, env=env, capture_output=True,
                                 text=True, timeout=120).stdout for name in LEARNING_RATES}
    return dest, status, logs


@pytest.fixture(scope="module")
def postgres_uri():
    """A PostgreSQL server of its own (trust auth on 127.0.0.1 only) with an empty database `mlflow`."""
    bindir = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
    if bindir is None or not Path(bindir, "initdb").exists():
        pytest.skip("PostgreSQL server not installed (Debian package postgresql; .ci/run installs it)")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg, which MLflow uses (the test extra)")
    root = Path(tempfile.mkdtemp(prefix="ganlab-pg-"))  # not under pytest's root-only tmp: postgres must reach it
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port, data = free_port(), root / "data"
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    pg = lambda tool, *args: _run([*as_owner, str(Path(bindir, tool)), *args], root, env)  # noqa: E731
    pg("initdb", "-D", str(data), "-U", "ganlab", "--auth=trust", "-E", "UTF8")
    pg("pg_ctl", "-D", str(data), "-l", str(root / "server.log"), "-w", "start",
       "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1")
    try:
        pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "ganlab", "mlflow")
        yield f"postgresql://ganlab@127.0.0.1:{port}/mlflow"
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def sqlite_queue(tmp_path_factory):
    dest, status, logs = _run_queue(tmp_path_factory.mktemp("queue-sqlite"), None)
    return f"sqlite:///{dest / 'mlflow.db'}", dest, status, logs


@pytest.fixture(scope="module")
def postgres_queue(tmp_path_factory, postgres_uri):
    dest, status, logs = _run_queue(tmp_path_factory.mktemp("queue-postgres"), postgres_uri)
    return postgres_uri, dest, status, logs


def _runs(uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("ganlab")
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def _layout(uri: str) -> list[tuple]:
    """Per run, in name order: its name and status, the keys of its params, metrics and stable tags, and each
    metric's steps."""
    client, runs = _runs(uri)
    layout = []
    for run in runs:
        steps = {key: [m.step for m in client.get_metric_history(run.info.run_id, key)] for key in run.data.metrics}
        layout.append((run.info.run_name, run.info.status, sorted(run.data.params), sorted(steps.items()),
                       sorted(k for k in run.data.tags if not k.startswith(VOLATILE_TAGS))))
    return sorted(layout)


@pytest.mark.parametrize("store", ["sqlite_queue", "postgres_queue"])
def test_every_queued_experiment_succeeds(request, store):
    _, _, status, logs = request.getfixturevalue(store)
    rows = {line.split()[1]: line for line in status.splitlines() if line.split()[1:2] and line.split()[1] in LEARNING_RATES}
    assert set(rows) == set(LEARNING_RATES), status
    for name, line in rows.items():
        assert "Success" in line, f"{name}: {line}\n{logs[name][-3000:]}"


@pytest.mark.parametrize("store", ["sqlite_queue", "postgres_queue"])
def test_every_experiment_is_in_the_one_store_with_its_metrics(request, store):
    uri, _, _, logs = request.getfixturevalue(store)
    client, runs = _runs(uri)
    assert sorted(run.data.tags["dvc.exp_name"] for run in runs) == sorted(LEARNING_RATES), runs
    for run in runs:
        name = run.data.tags["dvc.exp_name"]
        assert run.info.status == "FINISHED", (name, logs[name][-3000:])
        assert float(run.data.params["vanilla.optimizer.lr_g"]) == float(LEARNING_RATES[name])
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss_d")] == [1, 2]
        assert run.data.metrics["train_seconds"] > 0


def test_postgres_holds_the_same_run_layout_as_sqlite(sqlite_queue, postgres_queue):
    sqlite_layout, postgres_layout = _layout(sqlite_queue[0]), _layout(postgres_queue[0])
    assert len(sqlite_layout) == len(LEARNING_RATES)
    assert postgres_layout == sqlite_layout
    assert not (postgres_queue[1] / "mlflow.db").exists()  # nothing went to a local file instead


def test_the_database_was_initialised_once_and_only_in_the_main_repository(sqlite_queue):
    _, dest, _, _ = sqlite_queue
    db = sqlite3.connect(dest / "mlflow.db")
    assert db.execute("select count(*) from experiments where name = 'ganlab'").fetchone() == (1,)
    assert len(db.execute("select version_num from alembic_version").fetchall()) == 1
    stray = [p for p in dest.rglob("mlflow.db") if p != dest / "mlflow.db"]
    assert stray == []
