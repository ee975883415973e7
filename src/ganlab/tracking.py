"""MLflow tracking against a real SQLite database (or any store `MLFLOW_TRACKING_URI` names): one run per trained model.

**One run per trained model.** `model_run` is the training of one experiment × training seed × DVC experiment (run
name `vanilla · seed 0 · workspace`): the recipe as flat params (`vanilla.optimizer.lr_g`, `gmgan.sigma`), losses
and learning curves with `step = epoch`, the sample grids, and its status is the training's. Every later stage
execution on that model (evaluate, post-processing, sweep, probe) is a run nested under it (`stage_run(...,
parent=...)`, found by `model_run_id`), and copies its final numbers onto it with the method as prefix
(`fid`, `recall`, `drs.fid`, `truncation.recall`: `log_model_results`), so the runs table and the compare page
show each model's recipe and results in one row. The experiment is tagged for model development, so the UI opens on
that table (not on the GenAI views).

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
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}  # the UI opens on the runs table
PARENT_TAG = "mlflow.parentRunId"  # what the UI nests runs by
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
        if experiment is None:
            return client.create_experiment(EXPERIMENT, artifact_location=artifact_root().as_uri(), tags=EXPERIMENT_TAGS)
        for key, value in EXPERIMENT_TAGS.items():  # a database made before the tag existed
            if experiment.tags.get(key) != value:
                client.set_experiment_tag(experiment.experiment_id, key, value)
        return experiment.experiment_id


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


def dvc_experiment() -> str:
    """The DVC experiment this stage runs in (`DVC_EXP_NAME`), "workspace" for a plain `dvc repro`."""
    return os.environ.get("DVC_EXP_NAME", "workspace")


def _model_tags(experiment: str, seed: int) -> dict[str, str]:
    return {"ganlab.kind": "model", "ganlab.experiment": experiment, "ganlab.seed": str(seed),
            "dvc.exp_name": dvc_experiment()}


def model_run_name(experiment: str, seed: int) -> str:
    return f"{experiment} · seed {seed} · {dvc_experiment()}"


def model_run(experiment: str, seed: int, params: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
    """The run of one trained model, opened by its training (`stage_run` semantics: FINISHED, FAILED with the
    reason, KILLED)."""
    return stage_run("train", model_run_name(experiment, seed), params, tags=_model_tags(experiment, seed))


def recipe_params(experiment: str, seed: int, recipe: dict[str, Any]) -> dict[str, Any]:
    """A model run's params from its flat recipe (`ganlab.config.flatten`): `vanilla.optimizer.lr_g`, ..."""
    return {"experiment": experiment, "seed": seed, **{f"{experiment}.{k}": v for k, v in recipe.items() if k != "seed"}}


def model_run_id(experiment: str, seed: int, params: dict[str, Any]) -> str:
    """The run of the trained model (experiment, seed) in this DVC experiment: the latest one its training opened;
    if this DVC experiment did not retrain it (a post-processing knob changed, say), a new model run with
    `params` (the recipe), so that each DVC experiment's results sit on a model run of their own."""
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    experiment_id = ensure_database()
    client = MlflowClient(tracking_uri())
    wanted = " and ".join(f"tags.`{k}` = '{v}'" for k, v in _model_tags(experiment, seed).items())
    found = client.search_runs([experiment_id], filter_string=wanted, order_by=["attributes.start_time DESC"],
                               max_results=1)
    if found:
        return found[0].info.run_id
    tags = _model_tags(experiment, seed) | {"ganlab.note": "not trained in this DVC experiment: its results only"}
    run = client.create_run(experiment_id, run_name=model_run_name(experiment, seed), tags=tags)
    client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
    client.set_terminated(run.info.run_id, status="FINISHED")
    return run.info.run_id


def log_model_results(run_id: str, method: str, scores: dict[str, float]) -> None:
    """A method's final scores on the model run: `fid`, `recall`, ... for the generator's own samples (method
    "none"), `drs.fid`, ... for a post-processing method."""
    import time

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    prefix = "" if method == "none" else f"{method}."
    now = int(time.time() * 1000)
    metrics = [Metric(prefix + key, float(value), now, 0) for key, value in scores.items()]
    MlflowClient(tracking_uri()).log_batch(run_id, metrics=metrics)


@contextlib.contextmanager
def stage_run(stage: str, run_name: str, params: dict[str, Any], *, parent: str | None = None,
              tags: dict[str, str] | None = None) -> Iterator[Any]:
    """Start an MLflow run tagged with the DVC stage, experiment name, git commit, host and pid (plus `tags`),
    nested under the run `parent` when given, log `params` (flat), and end it FINISHED; if the body raises, end it
    FAILED (KILLED on Ctrl-C) with the tags `failure.type` (the exception class) and `failure.reason` (its first
    line, e.g. "DivergedError: generator loss is nan at epoch 3, step 12"), and let the exception propagate.

    Runs left RUNNING by killed processes of this host are closed first (`close_orphaned_runs`)."""
    import mlflow

    experiment_id = ensure_database()
    close_orphaned_runs(experiment_id)
    tags = {
        "dvc.stage": os.environ.get("DVC_STAGE", stage),
        "dvc.exp_name": dvc_experiment(),
        "git.commit": git_commit(),
        "ganlab.stage": stage,
        "ganlab.host": socket.gethostname(),
        "ganlab.pid": str(os.getpid()),
        **(tags or {}),
        **({PARENT_TAG: parent} if parent else {}),
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
