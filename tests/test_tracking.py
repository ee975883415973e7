"""MLflow tracking: how a stage's run ends (FINISHED, FAILED with the reason, KILLED), runs orphaned by a
`kill -9` closed by the next run, one database initialised once by concurrent first runs, and every queued
experiment copy mapped back to the main repository's database."""

from __future__ import annotations

import concurrent.futures
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from repo_copy import base_env

from ganlab import tracking
from ganlab.paths import main_repo_root
from ganlab.runtime import DivergedError


def _run(uri: str, run_id: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri).get_run(run_id)


def test_a_run_that_completes_is_finished_with_its_tags_and_params(uri):
    with tracking.stage_run("train", "train@x", {"x.lr": 1e-4, "x.hidden": [1, 2]}) as run:
        run_id = run.info.run_id
    got = _run(uri, run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"x.lr": "0.0001", "x.hidden": "[1, 2]"}
    tags = got.data.tags
    assert tags["ganlab.stage"] == "train" and tags["ganlab.pid"] == str(os.getpid())
    assert tags["dvc.exp_name"] == os.environ.get("DVC_EXP_NAME", "workspace")
    assert "failure.reason" not in tags


def test_a_failing_run_is_failed_with_the_one_line_reason_and_the_error_propagates(uri):
    message = "generator loss is nan at epoch 3, step 12"
    with pytest.raises(DivergedError, match="epoch 3, step 12"):
        with tracking.stage_run("train", "train@x", {}) as run:
            run_id = run.info.run_id
            raise DivergedError(message)
    got = _run(uri, run_id)
    assert got.info.status == "FAILED"
    assert got.data.tags["failure.type"] == "DivergedError"
    assert got.data.tags["failure.reason"] == f"DivergedError: {message}"
    import mlflow

    assert mlflow.active_run() is None


def test_a_multi_line_error_is_tagged_by_its_first_line(uri):
    with pytest.raises(ValueError):
        with tracking.stage_run("evaluate", "evaluate@x", {}) as run:
            run_id = run.info.run_id
            raise ValueError("first line\nsecond line")
    assert _run(uri, run_id).data.tags["failure.reason"] == "ValueError: first line"


def test_ctrl_c_ends_the_run_killed(uri):
    with pytest.raises(KeyboardInterrupt):
        with tracking.stage_run("train", "train@x", {}) as run:
            run_id = run.info.run_id
            raise KeyboardInterrupt
    assert _run(uri, run_id).info.status == "KILLED"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_of_dead_processes_are_closed_killed_and_live_ones_are_left_alone(uri):
    import socket

    from mlflow.tracking import MlflowClient

    experiment_id = tracking.ensure_database()
    client = MlflowClient(uri)
    host = socket.gethostname()
    dead = client.create_run(experiment_id, tags={"ganlab.host": host, "ganlab.pid": str(_dead_pid())})
    alive = client.create_run(experiment_id, tags={"ganlab.host": host, "ganlab.pid": str(os.getppid())})
    elsewhere = client.create_run(experiment_id, tags={"ganlab.host": "another-host", "ganlab.pid": str(_dead_pid())})
    untagged = client.create_run(experiment_id)  # not started by a ganlab stage: not ours to judge

    assert tracking.close_orphaned_runs(experiment_id) == [dead.info.run_id]
    assert client.get_run(dead.info.run_id).info.status == "KILLED"
    assert "killed" in client.get_run(dead.info.run_id).data.tags["failure.reason"]
    for run in (alive, elsewhere, untagged):
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
    assert tracking.close_orphaned_runs(experiment_id) == []  # idempotent


def test_concurrent_first_runs_create_one_database_and_one_experiment(tmp_path):
    db = tmp_path / "fresh.db"
    env = base_env()
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{db}"

    def init(_):
        return subprocess.run([sys.executable, "-m", "ganlab.tracking", "--init"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        procs = list(pool.map(init, range(4)))
    assert [p.returncode for p in procs] == [0] * 4, [p.stderr[-2000:] for p in procs]
    ids = {p.stdout.strip().rsplit("id ", 1)[1].rstrip(")") for p in procs}
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from experiments where name = 'ganlab'").fetchone() == (1,)
    assert ids == {str(con.execute("select experiment_id from experiments where name = 'ganlab'").fetchone()[0])}
    assert len(con.execute("select version_num from alembic_version").fetchall()) == 1


def test_a_queued_experiment_copy_logs_to_the_main_repository(tmp_path, monkeypatch):
    main = tmp_path / "repo"
    copy = main / ".dvc" / "tmp" / "exps" / "run" / "abc123"
    copy.mkdir(parents=True)
    (main / "dvc.yaml").write_text("stages: {}\n")
    (copy / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(copy))
    assert main_repo_root() == main.resolve()
    assert tracking.tracking_uri() == f"sqlite:///{main.resolve() / 'mlflow.db'}"
    assert tracking.artifact_root() == main.resolve() / "mlartifacts"
    # ... and a plain checkout is its own main repository
    monkeypatch.setenv("DVC_ROOT", str(main))
    assert main_repo_root() == main.resolve()
    monkeypatch.delenv("DVC_ROOT")
    monkeypatch.chdir(copy)
    assert main_repo_root() == main.resolve()
    assert main_repo_root(Path("/elsewhere/project")) == Path("/elsewhere/project")


def test_the_experiment_is_set_up_for_model_development(uri):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment_id = tracking.ensure_database()
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    client.set_experiment_tag(experiment_id, "mlflow.experimentKind", "genai_development")  # an older database
    assert tracking.ensure_database() == experiment_id
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"


def test_one_run_per_trained_model_carries_its_recipe_and_every_methods_scores(uri, monkeypatch):
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    with tracking.model_run("gmgan", 1, {"gmgan.sigma": 1.7}) as run:
        model_id = run.info.run_id
    assert tracking.model_run_id("gmgan", 1, {}) == model_id
    for method, fid in (("none", 40.0), ("drs", 35.0)):
        with tracking.stage_run("evaluate", f"evaluate@gmgan+{method}", {"method": method}, parent=model_id) as run:
            tracking.log_model_results(model_id, method, {"fid": fid, "recall": 0.5})
        child = _run(uri, run.info.run_id)
        assert child.data.tags[tracking.PARENT_TAG] == model_id and child.info.status == "FINISHED"
    model = _run(uri, model_id)
    assert model.info.run_name == "gmgan · seed 1 · workspace" and model.info.status == "FINISHED"
    assert model.data.params == {"gmgan.sigma": "1.7"}
    assert model.data.metrics == {"fid": 40.0, "recall": 0.5, "drs.fid": 35.0, "drs.recall": 0.5}
    assert tracking.PARENT_TAG not in model.data.tags  # a model run is a top-level row
    # another seed, another model; a DVC experiment that did not retrain gets a model run of its own
    assert tracking.model_run_id("gmgan", 2, {"seed": 2}) != model_id
    monkeypatch.setenv("DVC_EXP_NAME", "exp-sigma")
    other = tracking.model_run_id("gmgan", 1, {"gmgan.sigma": 1.4})
    got = _run(uri, other)
    assert other != model_id and got.data.params == {"gmgan.sigma": "1.4"}
    assert got.info.run_name == "gmgan · seed 1 · exp-sigma" and "not trained" in got.data.tags["ganlab.note"]
    assert tracking.model_run_id("gmgan", 1, {}) == other  # found again, not made twice
