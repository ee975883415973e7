"""MLflow tracking against a real SQLite database, one run per executed train / evaluate stage.

Tracking URI: `$MLFLOW_TRACKING_URI` when set, else `sqlite:///<main repo>/mlflow.db` (absolute). Queued
DVC experiments run in temporary copies under `.dvc/tmp/exps`, so the main repository is resolved from
there (`ganlab.paths.main_repo_root`) and every experiment lands in the same database.

Schema creation races when several first runs start at once, so `ensure_database` creates the database and
the `ganlab` experiment under an exclusive file lock; every stage calls it before starting a run.

A run that fails says why: status FAILED plus the tags `failure.type` / `failure.reason`. A run whose process
was killed (`kill -9`, OOM) cannot say anything; the next stage run on the same host closes it as KILLED.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import subprocess
from pathlib import Path
from typing import Any, Iterator

from ganlab.paths import main_repo_root, repo_root

EXPERIMENT = "ganlab"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{main_repo_root() / 'mlflow.db'}"


def artifact_root() -> Path:
    return main_repo_root() / "mlartifacts"


def ensure_database(uri: str | None = None) -> str:
    """Create the tracking database and the `ganlab` experiment once; safe to call from parallel processes.

    Returns the experiment id."""
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = uri or tracking_uri()
    # Creating the schema logs INFO lines on stderr ("Creating initial MLflow database tables..."); a failing
    # stage's stderr must stay its one error line.
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    lock_path = Path(uri.removeprefix("sqlite:///") + ".lock") if uri.startswith("sqlite:///") else None
    with contextlib.ExitStack() as stack:
        if lock_path is not None:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            lock = stack.enter_context(open(lock_path, "w"))
            fcntl.flock(lock, fcntl.LOCK_EX)
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return experiment.experiment_id
        return client.create_experiment(EXPERIMENT, artifact_location=artifact_root().as_uri())


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def one_line(error: BaseException) -> str:
    """`Type: first line of the message`, for a tag (MLflow tag values are capped at 5000 chars)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:1000]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def close_orphaned_runs(experiment_id: str) -> list[str]:
    """Mark KILLED the runs this host started whose process is gone while they still read RUNNING.

    A `kill -9` (or an OOM kill, a power cut) ends a stage without running `stage_run`'s exit, so its run
    would stay RUNNING forever. Every run records `ganlab.host` and `ganlab.pid`; a RUNNING run of this host
    whose pid no longer exists is closed here, with `failure.reason` saying so. Runs of other hosts, and runs
    whose process is alive (parallel queued experiments), are left alone. Returns the closed run ids."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri())
    host = socket.gethostname()
    runs = client.search_runs(
        [experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.`ganlab.host` = '{host}'"
    )
    closed = []
    for run in runs:
        pid = run.data.tags.get("ganlab.pid", "")
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            client.set_tag(run.info.run_id, "failure.reason", f"process {pid} ended without closing the run (killed)")
            client.set_terminated(run.info.run_id, status="KILLED")
            closed.append(run.info.run_id)
    return closed


@contextlib.contextmanager
def stage_run(stage: str, run_name: str, params: dict[str, Any]) -> Iterator[Any]:
    """Start an MLflow run tagged with the DVC stage, experiment name, git commit, host and pid, log `params`
    (flat), and end it FINISHED; if the body raises, end it FAILED (KILLED on Ctrl-C) with the tags
    `failure.type` (the exception class) and `failure.reason` (its first line, e.g. "DivergedError: generator
    loss is nan at epoch 3, step 12"), and let the exception propagate.

    Runs left RUNNING by killed processes of this host are closed first (`close_orphaned_runs`)."""
    import mlflow

    experiment_id = ensure_database()
    close_orphaned_runs(experiment_id)
    tags = {
        "dvc.stage": os.environ.get("DVC_STAGE", stage),
        "dvc.exp_name": os.environ.get("DVC_EXP_NAME", "workspace"),
        "git.commit": git_commit(),
        "ganlab.stage": stage,
        "ganlab.host": socket.gethostname(),
        "ganlab.pid": str(os.getpid()),
    }
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags)
    try:
        # MLflow caps param values at 6000 chars; ours are short scalars and small lists.
        mlflow.log_params({k: str(v) for k, v in params.items()})
        yield run
    except BaseException as error:
        killed = isinstance(error, (KeyboardInterrupt, SystemExit))
        with contextlib.suppress(Exception):  # the original error matters more than a tagging failure
            mlflow.set_tags({"failure.type": type(error).__name__, "failure.reason": one_line(error)})
        mlflow.end_run(status="KILLED" if killed else "FAILED")
        raise
    mlflow.end_run(status="FINISHED")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Create the MLflow tracking database and experiment once.")
    parser.add_argument("--init", action="store_true", help="create the database (idempotent)")
    args = parser.parse_args()
    if args.init:
        print(f"MLflow tracking: {tracking_uri()} (experiment {EXPERIMENT!r}, id {ensure_database()})")
