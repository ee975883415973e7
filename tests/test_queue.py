"""Parallel experiments: three `dvc exp run --queue` experiments run by `dvc queue start -j 2` in a copy of the
repository all land, with their metrics, in the main repository's one MLflow database, which the first
concurrent runs create exactly once.

Short form for CI: tiny params (3 batches per epoch, 2 epochs) and the target `train@vanilla` (its upstream
fetch/prepare are reproduced once beforehand and come from the cache), so the experiments differ only in
the training stage that logs to MLflow. Queued experiments run in `.dvc/tmp/exps/...` copies;
`ganlab.paths.main_repo_root` maps them back to the main repository.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repo_copy import _run, copy_repo

pytestmark = pytest.mark.slow

LEARNING_RATES = {"lr2": "2.0e-4", "lr3": "3.0e-4", "lr4": "4.0e-4"}


def _tiny(params: dict) -> None:
    params["max_batches_per_epoch"] = 3
    params["vanilla"]["num_epochs"]["quick"] = 2


@pytest.fixture(scope="module")
def queued(tmp_path_factory):
    dest, env = copy_repo(tmp_path_factory.mktemp("queue") / "ganlab", _tiny)
    dvc = str(Path(sys.executable).parent / "dvc")
    # Upstream stages once, committed, so that every experiment restores them from the shared cache.
    _run([dvc, "repro", "prepare@mnist"], dest, env)
    _run(["git", "add", "-A"], dest, env)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "prepared"], dest, env)
    assert not (dest / "mlflow.db").exists()  # the first queued runs create it, concurrently
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


def test_every_queued_experiment_succeeds(queued):
    _, status, logs = queued
    rows = {line.split()[1]: line for line in status.splitlines() if line.split()[1:2] and line.split()[1] in LEARNING_RATES}
    assert set(rows) == set(LEARNING_RATES), status
    for name, line in rows.items():
        assert "Success" in line, f"{name}: {line}\n{logs[name][-3000:]}"


def test_every_experiment_is_in_the_main_repositorys_database_with_its_metrics(queued):
    dest, _, logs = queued
    db = sqlite3.connect(dest / "mlflow.db")
    runs = db.execute(
        "select r.run_uuid, r.status, t.value from runs r join tags t on t.run_uuid = r.run_uuid "
        "where t.key = 'dvc.exp_name'"
    ).fetchall()
    assert sorted(name for _, _, name in runs) == sorted(LEARNING_RATES), runs
    for run_id, status, name in runs:
        assert status == "FINISHED", (name, logs[name][-3000:])
        lr = db.execute("select value from params where run_uuid = ? and key = 'vanilla.optimizer.lr_g'", (run_id,))
        assert float(lr.fetchone()[0]) == float(LEARNING_RATES[name])
        steps = db.execute("select step from metrics where run_uuid = ? and key = 'loss_d' order by step", (run_id,))
        assert [s for (s,) in steps] == [1, 2]
        seconds = db.execute("select value from latest_metrics where run_uuid = ? and key = 'train_seconds'", (run_id,))
        assert seconds.fetchone()[0] > 0


def test_the_database_was_initialised_once_and_only_in_the_main_repository(queued):
    dest, _, _ = queued
    db = sqlite3.connect(dest / "mlflow.db")
    assert db.execute("select count(*) from experiments where name = 'ganlab'").fetchone() == (1,)
    assert len(db.execute("select version_num from alembic_version").fetchall()) == 1
    stray = [p for p in dest.rglob("mlflow.db") if p != dest / "mlflow.db"]
    assert stray == []
