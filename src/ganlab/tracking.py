"""MLflow tracking against a real SQLite database, one run per executed train / evaluate stage.

Tracking URI: `$MLFLOW_TRACKING_URI` when set, else `sqlite:///<main repo>/mlflow.db` (absolute). Queued
DVC experiments run in temporary copies under `.dvc/tmp/exps`, so the main repository is resolved from
there (`ganlab.paths.main_repo_root`) and every experiment lands in the same database.

Schema creation races when several first runs start at once, so `ensure_database` creates the database and
the `ganlab` experiment under an exclusive file lock; every stage calls it before starting a run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
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


@contextlib.contextmanager
def stage_run(stage: str, run_name: str, params: dict[str, Any]) -> Iterator[Any]:
    """Start an MLflow run tagged with the DVC stage, experiment name and git commit, log `params` (flat),
    and end it FINISHED, or FAILED if the body raises (the exception propagates)."""
    import mlflow

    experiment_id = ensure_database()
    tags = {
        "dvc.stage": os.environ.get("DVC_STAGE", stage),
        "dvc.exp_name": os.environ.get("DVC_EXP_NAME", "workspace"),
        "git.commit": git_commit(),
        "ganlab.stage": stage,
    }
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags)
    try:
        # MLflow caps param values at 6000 chars; ours are short scalars and small lists.
        mlflow.log_params({k: str(v) for k, v in params.items()})
        yield run
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Create the MLflow tracking database and experiment once.")
    parser.add_argument("--init", action="store_true", help="create the database (idempotent)")
    args = parser.parse_args()
    if args.init:
        print(f"MLflow tracking: {tracking_uri()} (experiment {EXPERIMENT!r}, id {ensure_database()})")
