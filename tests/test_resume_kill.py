"""Training survives a `kill -9`, refuses to resume a changed recipe, and stops cleanly when it diverges.

Everything runs through the real stage (`stages/train.py`) on a tiny prepared dataset and a small MLP, with a
private MLflow database per test. The uninterrupted reference run and the run that gets killed execute at the
same time, so the module stays around a minute on a loaded 2-core machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from repo_copy import stage_command, stage_env, tiny_params, train_args, write_params, write_tiny_dataset

pytestmark = pytest.mark.slow

NUM_EPOCHS = 4


def _workspace(tmp: Path, n_train: int = 4096, precision: str = "auto", **experiment) -> Path:  # ~1 s epochs
    tmp.mkdir(parents=True, exist_ok=True)
    experiment.setdefault("num_epochs", {"quick": NUM_EPOCHS, "paper": NUM_EPOCHS})
    write_params(tmp / "params.yaml", tiny_params(precision, **experiment))
    write_tiny_dataset(tmp / "data" / "prepared.npz", n_train=n_train)
    return tmp


def _env(tmp: Path) -> dict[str, str]:
    env = stage_env(tmp)
    env["OMP_NUM_THREADS"] = "1"  # two trainings share 2 cores; the same setting in every run of a test
    return env


def _run(tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(stage_command("train", train_args(tmp)), cwd=tmp, env=_env(tmp),
                          capture_output=True, text=True, timeout=600)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_identical(a, b, where: str = "state") -> None:
    """Exact equality of nested checkpoint content: tensors with torch.equal, everything else with ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            _assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _runs(db: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(run name, status, tags) of every run in an MLflow SQLite database, oldest first."""
    con = sqlite3.connect(db)
    rows = con.execute("select run_uuid, name, status from runs order by start_time").fetchall()
    out = []
    for run_id, name, status in rows:
        tags = dict(con.execute("select key, value from tags where run_uuid = ?", (run_id,)).fetchall())
        out.append((name, status, tags))
    con.close()
    return out


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_kill_9_mid_epoch_then_resume_matches_an_uninterrupted_run_bit_for_bit(tmp_path, precision):
    ref, killed = _workspace(tmp_path / "ref", precision=precision), _workspace(tmp_path / "killed", precision=precision)
    reference = subprocess.Popen(stage_command("train", train_args(ref)), cwd=ref, env=_env(ref),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = subprocess.Popen(stage_command("train", train_args(killed)), cwd=killed, env=_env(killed),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "train" / "seed-0" / "checkpoint.pt"
    try:
        # Poll the checkpoint: every read must succeed (atomic replace: never a torn file).
        deadline = time.monotonic() + 300
        epoch = 0
        while epoch < 1:
            assert victim.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            if ckpt.exists():
                epoch = torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"]
            time.sleep(0.05)
        time.sleep(0.1)  # into the next epoch (a kill inside a checkpoint write is covered by atomicity too)
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(timeout=60) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
    at_kill = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert 1 <= at_kill["epoch"] < NUM_EPOCHS, "killed too late to test a resume"
    assert not (killed / "metrics" / "tiny.json").exists()

    # What a kill inside `save_atomic` leaves behind: its temporary file beside the checkpoint.
    (ckpt.parent / ".checkpoint.pt.k1ll3d.pt").write_bytes(b"torn")
    resumed = _run(killed)
    assert resumed.returncode == 0, resumed.stderr
    assert f"from epoch {at_kill['epoch']}/{NUM_EPOCHS}" in resumed.stdout
    out, _ = reference.communicate(timeout=600)
    assert reference.returncode == 0, out

    final = torch.load(ckpt, map_location="cpu", weights_only=True)
    expected = torch.load(ref / "train" / "seed-0" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert final["epoch"] == expected["epoch"] == NUM_EPOCHS
    for key in ("generator", "discriminator", "opt_g", "opt_d", "rng", "config"):
        _assert_identical(final[key], expected[key], key)
    for a, b in zip(final["history"], expected["history"], strict=True):
        assert (a["epoch"], a["loss_d"], a["loss_g"]) == (b["epoch"], b["loss_d"], b["loss_g"])
        assert a["curve"] == b["curve"]  # the learning curve too: scoring draws nothing from training's RNGs
    # The other direction: the comparison can fail. The weights at the kill differ from the final ones.
    with pytest.raises(AssertionError, match="differs"):
        _assert_identical(at_kill["generator"], final["generator"], "generator")

    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["checkpoint.pt", "grids"], "stray temporary files"
    assert sorted(p.name for p in (killed / "metrics").iterdir()) == ["tiny.json", "tiny_curve.csv", "tiny_losses.csv"]
    summary = json.loads((killed / "metrics" / "tiny.json").read_text())
    assert [r["seed"] for r in summary["runs"]] == [0] and summary["runs"][0]["epochs"] == NUM_EPOCHS
    assert summary["final_loss_d"] == summary["runs"][0]["final_loss_d"] == expected["history"][-1]["loss_d"]
    assert final["config"]["precision"] == summary["runs"][0]["precision"] == precision

    # MLflow: the killed run is closed as KILLED by the next run (it could not close itself), the resumed one
    # FINISHED; nothing is left RUNNING.
    runs = _runs(killed / "m.db")
    model = "tiny · seed 0 · workspace"  # the model's run (ganlab.tracking.model_run), opened by each training
    assert [(name, status) for name, status, _ in runs] == [(model, "KILLED"), (model, "FINISHED")]
    assert runs[0][2]["ganlab.pid"] == str(victim.pid)
    assert "killed" in runs[0][2]["failure.reason"]


def _incomplete_checkpoint(tmp: Path, epochs: int = 1) -> Path:
    """Train `epochs` epochs of the workspace's recipe in-process: an interrupted run's checkpoint."""
    from ganlab.config import load_experiment, read_params
    from ganlab.data.arrays import load_prepared
    from ganlab.runtime import resolve_precision
    from ganlab.train import train_gan

    pipeline, cfg = load_experiment(read_params(tmp / "params.yaml"), "tiny")
    cfg = cfg.model_copy(update={"precision": resolve_precision(pipeline.precision, torch.device("cpu"))})  # as the stage
    data = load_prepared(tmp / "data" / "prepared.npz")
    ckpt = tmp / "train" / "seed-0" / "checkpoint.pt"
    train_gan(cfg, data["x_train"], data["y_train"], num_epochs=epochs, device=torch.device("cpu"),
              checkpoint_path=ckpt, num_classes=10)
    return ckpt


def test_a_changed_recipe_is_refused_naming_the_keys_and_the_checkpoint_is_untouched(tmp_path):
    tmp = _workspace(tmp_path, n_train=64)
    ckpt = _incomplete_checkpoint(tmp)
    before, mtime = _sha256(ckpt), ckpt.stat().st_mtime_ns
    write_params(tmp / "params.yaml", tiny_params(
        num_epochs={"quick": NUM_EPOCHS, "paper": NUM_EPOCHS},
        optimizer={"name": "adam", "lr_g": 2.0e-3, "lr_d": 1.0e-3, "betas": [0.5, 0.999]}, batch_size=8,
    ))
    proc = _run(tmp)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "optimizer.lr_g: saved 0.001, now 0.002" in lines[0] and "batch_size: saved 16, now 8" in lines[0]
    assert "optimizer.lr_d" not in lines[0] and "num_epochs" not in lines[0]  # unchanged / resumable keys
    assert (_sha256(ckpt), ckpt.stat().st_mtime_ns) == (before, mtime)
    assert not (tmp / "metrics").exists()
    [(_, status, tags)] = _runs(tmp / "m.db")
    assert status == "FAILED" and tags["failure.type"] == "ConfigError"


@pytest.mark.parametrize("change", [
    pytest.param({"grid_size": 9}, id="grid_size"),
    pytest.param({"num_epochs": {"quick": 2, "paper": 2}}, id="num_epochs"),
])
def test_resumable_changes_resume(change, tmp_path):
    # RESUMABLE_CHANGES (num_epochs, grid_size) cannot affect the saved state: the run resumes from epoch 1.
    tmp = _workspace(tmp_path, n_train=64, num_epochs={"quick": 3, "paper": 3})
    ckpt = _incomplete_checkpoint(tmp)
    write_params(tmp / "params.yaml", tiny_params(**{"num_epochs": {"quick": 3, "paper": 3}, **change}))
    proc = _run(tmp)
    assert proc.returncode == 0, proc.stderr
    epochs = tiny_params(**change)["tiny"]["num_epochs"]["quick"] if "num_epochs" in change else 3
    assert f"from epoch 1/{epochs}" in proc.stdout
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["epoch"] == epochs and len(state["history"]) == epochs
    assert state["config"]["grid_size"] == tiny_params(**change)["tiny"]["grid_size"]


def test_divergence_exits_3_keeps_the_last_good_checkpoint_and_writes_no_metrics(tmp_path):
    # A finished run of a sane recipe, then the same experiment with lr = 1e30: Adam's first step moves every
    # weight by ~1e30, the next forward pass overflows float32 and the loss is NaN in epoch 1.
    tmp = _workspace(tmp_path, n_train=64, num_epochs={"quick": 1, "paper": 1})
    ckpt = _incomplete_checkpoint(tmp)
    (tmp / "metrics").mkdir()
    (tmp / "metrics" / "tiny.json").write_text('{"from": "the good run"}\n')
    before = {p: (_sha256(p), p.stat().st_mtime_ns) for p in (ckpt, tmp / "metrics" / "tiny.json")}
    write_params(tmp / "params.yaml", tiny_params(
        num_epochs={"quick": 1, "paper": 1},
        optimizer={"name": "adam", "lr_g": 1.0e30, "lr_d": 1.0e30, "betas": [0.5, 0.999]},
    ))
    proc = _run(tmp)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diverged: ") and "at epoch 1, step " in lines[0], proc.stderr
    assert {p: (_sha256(p), p.stat().st_mtime_ns) for p in before} == before
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["checkpoint.pt"]  # no temporaries, no grid
    assert not (tmp / "metrics" / "tiny_losses.csv").exists()
    [(_, status, tags)] = _runs(tmp / "m.db")
    assert status == "FAILED"
    assert tags["failure.type"] == "DivergedError"
    assert tags["failure.reason"] == "DivergedError: " + lines[0].removeprefix("diverged: ")


@pytest.fixture
def train_stage():
    """stages/train.py imported as a module; its `main` is the stage entry (`@stage_entry`)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "stages" / "train.py"
    spec = importlib.util.spec_from_file_location("stage_train_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_divergence_after_good_epochs_keeps_the_checkpoint_of_the_last_good_epoch(
    tmp_path, monkeypatch, capsys, train_stage
):
    # Mid-run divergence made deterministic, in-process through the stage's main(): the D loss turns NaN on
    # the first step of epoch 3. The checkpoint must stay byte-identical to the one written after epoch 2.
    import mlflow

    from ganlab import losses
    from ganlab import train as train_module

    tmp = _workspace(tmp_path, n_train=64)  # batch 16: 4 D steps per epoch
    ns = losses.LOSSES["ns"]
    d_calls = []

    def poisoned_d(*args, **kwargs):
        d_calls.append(1)
        value = ns.d(*args, **kwargs)
        return value * float("nan") if len(d_calls) > 2 * 4 else value

    monkeypatch.setitem(losses.LOSSES, "ns", dataclasses.replace(ns, d=poisoned_d))
    saved = []
    save_atomic = train_module.ckpt_io.save_atomic

    def recording_save(obj, path):
        save_atomic(obj, path)
        saved.append((obj["epoch"], _sha256(Path(path))))

    monkeypatch.setattr(train_module.ckpt_io, "save_atomic", recording_save)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'm.db'}")
    monkeypatch.chdir(tmp)
    monkeypatch.setattr(sys, "argv", ["stages/train.py", *train_args(tmp)])

    with pytest.raises(SystemExit) as exit_info:
        train_stage.main()
    assert exit_info.value.code == 3
    assert capsys.readouterr().err.strip().splitlines() == ["diverged: discriminator loss is nan at epoch 3, step 1"]
    ckpt = tmp / "train" / "seed-0" / "checkpoint.pt"
    assert [epoch for epoch, _ in saved] == [1, 2]
    assert _sha256(ckpt) == saved[-1][1]
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"] == 2
    assert not (tmp / "metrics").exists()
    assert mlflow.active_run() is None
    [(_, status, tags)] = _runs(tmp / "m.db")
    assert (status, tags["failure.reason"]) == ("FAILED", "DivergedError: discriminator loss is nan at epoch 3, step 1")
