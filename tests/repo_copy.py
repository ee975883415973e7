"""Test helpers that run the real stages outside the working tree.

- `copy_repo(dest)`: a git repository holding the current working tree (tracked + untracked files that git does
  not ignore; no data, metrics or reports), for tests that run `dvc repro` / `dvc exp run` for real.
- `tiny_params(...)` + `write_tiny_dataset(path, n)`: a params dict and a prepared dataset small enough that
  one training epoch of `stages/train.py` takes about a second on a CPU.
- `stage_env(tmp)`: the environment a stage subprocess runs with (the venv on PATH, a private MLflow database).
- `run_stage(name, args, cwd, env)`: `python stages/<name>.py ...` as a subprocess.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def base_env() -> dict[str, str]:
    """This interpreter's bin folder first on PATH (so `python` and `dvc` are the venv's), no inherited
    MLflow URI, telemetry off."""
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def copy_repo(dest: Path, params_update: Any = None) -> tuple[Path, dict[str, str]]:
    """Copy the working tree into `dest` (tracked + untracked-not-ignored files, minus data/, metrics/,
    reports/ outputs and dvc.lock), let `params_update(params)` edit params.yaml in place, and commit it all
    as the first commit of a fresh git repository. Returns (dest, env)."""
    dest.mkdir(parents=True, exist_ok=True)
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not name.startswith(("data/", "metrics/", "reports/")) and name != "dvc.lock":
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
        elif src.is_file() and name.startswith("reports/vendor/"):  # vendored Vega: source, not output
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    if params_update is not None:
        params = yaml.safe_load((dest / "params.yaml").read_text())
        params_update(params)
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    env = base_env()
    env["GANLAB_DOWNLOAD_DIR"] = str(ROOT / "data" / "downloads")  # reuse verified downloads
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        _run(cmd, dest, env)
    return dest, env


# ---------------------------------------------------------------------------------------------------
# A tiny stand-alone workspace for one stage


def tiny_params(precision: str = "auto", **experiment: Any) -> dict[str, Any]:
    """The project's params.yaml with one small experiment `tiny` (MLP widths 64/128, batch 16) on dataset
    `mnist` at `precision`; `experiment` overrides keys of the `tiny:` section."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["device"] = "cpu"
    params["precision"] = precision
    params["experiments"] = {"tiny": {"dataset": "mnist", "nets": "mlp"}}
    params["probes"] = {}
    params["interpolations"] = {}
    params["curves"] = {"eval_every": {"quick": 1, "paper": 1}, "n_samples": 32, "seed": 1}  # every epoch, cheap
    params["tiny"] = {
        "generator": {"arch": "mlp", "nz": 16, "hidden": [64, 128], "batch_norm": False},
        "discriminator": {"arch": "mlp", "hidden": [128, 64], "dropout": 0.3},
        "loss": "ns",
        "optimizer": {"name": "adam", "lr_g": 1.0e-3, "lr_d": 1.0e-3, "betas": [0.5, 0.999]},
        "batch_size": 16,
        "num_epochs": {"quick": 3, "paper": 3},
        "n_critic": 1,
        "grid_size": 4,
    }
    params["tiny"].update(copy.deepcopy(experiment))
    return params


def write_params(path: Path, params: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def write_tiny_dataset(path: Path, n_train: int = 256, n_test: int = 32, seed: int = 0) -> Path:
    """A prepared dataset in the project's npz format: uint8 (N, 28, 28, 1) blobs, 10 classes; and beside it
    `network.pt`, an untrained 16-D LeNet as the domain feature network of the train stage's learning curves."""
    from ganlab.config import FeatureNetConfig
    from ganlab.data.common import write_npz
    from ganlab.features import save_feature_net
    from ganlab.nets.classifier import build_feature_net

    import torch

    with torch.random.fork_rng():  # seeded weights, the caller's RNG untouched
        torch.manual_seed(seed)
        net = build_feature_net("lenet", 1, 28, 10, 16)
    save_feature_net(net, path.parent / "network.pt", dataset="mnist", info={},
                     cfg=FeatureNetConfig(arch="lenet", feature_dim=16, num_epochs={"quick": 1, "paper": 1}))

    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, size=(n_train, 28, 28, 1), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=n_train).astype(np.int64),
        "x_test": rng.integers(0, 256, size=(n_test, 28, 28, 1), dtype=np.uint8),
        "y_test": rng.integers(0, 10, size=n_test).astype(np.int64),
        "class_names": np.array([str(i) for i in range(10)]),
    }
    write_npz(path, arrays)
    return path


def stage_env(tmp: Path) -> dict[str, str]:
    """A stage subprocess's environment: the venv on PATH and a private MLflow database `<tmp>/m.db`."""
    env = base_env()
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'm.db'}"
    return env


def train_args(tmp: Path, experiment: str = "tiny") -> list[str]:
    """`stages/train.py` arguments with every path inside `tmp` (the layout dvc.yaml uses)."""
    return [
        "--params", str(tmp / "params.yaml"), "--experiment", experiment,
        "--data", str(tmp / "data" / "prepared.npz"),
        "--out", str(tmp / "train"),
        "--metrics", str(tmp / "metrics" / f"{experiment}.json"),
        "--losses", str(tmp / "metrics" / f"{experiment}_losses.csv"),
        "--curve", str(tmp / "metrics" / f"{experiment}_curve.csv"),
        "--net", str(tmp / "data" / "network.pt"),
    ]


def stage_command(name: str, args: list[str]) -> list[str]:
    return [sys.executable, str(ROOT / "stages" / f"{name}.py"), *args]


def run_stage(name: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `stages/<name>.py args` to completion (no check: callers assert the exit code)."""
    return subprocess.run(stage_command(name, args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
