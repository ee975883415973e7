"""Data-parallel training: the train stage under `torchrun --nproc_per_node 2` (gloo, CPU).

Each test runs the real stage on a tiny dataset and MLP in a private workspace and MLflow database. The ranks
save their final weights through the debug hook `$GANLAB_DEBUG_RANK_STATE_DIR` (`ganlab.distributed`).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from repo_copy import ROOT, stage_command, stage_env, tiny_params, train_args, write_params, write_tiny_dataset

pytestmark = pytest.mark.slow  # torchrun starts 2 interpreters per run: ~10-20 s each on 2 cores

N_TRAIN, BATCH, EPOCHS = 256, 16, 3


def _workspace(tmp: Path, epochs: int = EPOCHS, precision: str = "auto") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    write_params(tmp / "params.yaml", tiny_params(precision, num_epochs={"quick": epochs, "paper": epochs}, batch_size=BATCH))
    write_tiny_dataset(tmp / "data" / "prepared.npz", n_train=N_TRAIN)
    return tmp


def _run(tmp: Path, nproc: int | None) -> subprocess.CompletedProcess:
    env = stage_env(tmp)
    env["OMP_NUM_THREADS"] = "1"
    env["GANLAB_DEBUG_RANK_STATE_DIR"] = str(tmp / "ranks")
    if nproc is None:
        cmd = stage_command("train", train_args(tmp))
    else:
        torchrun = Path(sys.executable).parent / "torchrun"
        cmd = [str(torchrun), "--standalone", f"--nproc_per_node={nproc}", str(ROOT / "stages" / "train.py"),
               *train_args(tmp)]
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _runs(db: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect(db)
    rows = con.execute("select name, status from runs").fetchall()
    con.close()
    return rows


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_two_ranks_train_identical_weights_and_only_rank_0_writes(tmp_path):
    ddp, single = _workspace(tmp_path / "ddp"), _workspace(tmp_path / "single")
    _run(ddp, nproc=2)
    _run(single, nproc=None)

    # rank 0 alone: one MLflow run, one checkpoint, one metrics file
    assert _runs(ddp / "m.db") == [("tiny · seed 0 · workspace", "FINISHED")]  # the model run
    ckpt = _load(ddp / "train" / "seed-0" / "checkpoint.pt")
    assert ckpt["epoch"] == EPOCHS and ckpt["world_size"] == 2 and len(ckpt["rng_ranks"]) == 2
    assert (ddp / "metrics" / "tiny.json").exists()
    assert len(list((ddp / "train" / "seed-0" / "grids").glob("*.png"))) == EPOCHS

    # gradients are averaged: both ranks end with the same weights, which are the checkpoint's
    rank0, rank1 = _load(ddp / "ranks" / "rank0.pt"), _load(ddp / "ranks" / "rank1.pt")
    for net in ("generator", "discriminator"):
        assert _same(rank0[net], rank1[net]), f"{net}: ranks disagree"
        assert _same(rank0[net], ckpt[net])

    # ...while their data and latents differ: the two ranks' RNG states at the end are not the same
    assert not torch.equal(ckpt["rng_ranks"][0]["train"], ckpt["rng_ranks"][1]["train"])
    assert not torch.equal(ckpt["rng_ranks"][0]["torch_cpu"], ckpt["rng_ranks"][1]["torch_cpu"])

    # against one process: each rank takes half the batches (16 -> 8 Adam steps per epoch), the same shapes,
    # other weights (other batches, latents and dropout masks)
    one = _load(single / "train" / "seed-0" / "checkpoint.pt")
    steps = {name: int(state["opt_d"]["state"][0]["step"]) for name, state in (("ddp", ckpt), ("one", one))}
    assert steps == {"one": EPOCHS * N_TRAIN // BATCH, "ddp": EPOCHS * N_TRAIN // BATCH // 2}
    assert "world_size" not in one and "rng_ranks" not in one
    for net in ("generator", "discriminator"):
        assert {k: v.shape for k, v in one[net].items()} == {k: v.shape for k, v in ckpt[net].items()}
        assert not _same(one[net], ckpt[net])
    for a, b in zip(ckpt["history"], one["history"], strict=True):
        assert all(torch.isfinite(torch.tensor([a["loss_d"], a["loss_g"]])))
        assert (a["loss_d"], a["loss_g"]) != (b["loss_d"], b["loss_g"])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_two_rank_run_resumes_bit_identically(tmp_path, precision):
    full, part = _workspace(tmp_path / "full", precision=precision), _workspace(tmp_path / "part", 2, precision)
    _run(full, nproc=2)
    _run(part, nproc=2)
    write_params(part / "params.yaml",
                 tiny_params(precision, num_epochs={"quick": EPOCHS, "paper": EPOCHS}, batch_size=BATCH))
    resumed = _run(part, nproc=2)
    assert f"from epoch 2/{EPOCHS}" in resumed.stdout
    a, b = _load(full / "train" / "seed-0" / "checkpoint.pt"), _load(part / "train" / "seed-0" / "checkpoint.pt")
    for net in ("generator", "discriminator"):
        assert _same(a[net], b[net]), f"{net} differs after resume"
    for r in (0, 1):
        assert torch.equal(a["rng_ranks"][r]["train"], b["rng_ranks"][r]["train"])
    # both ranks of the resumed run restored their own state: they still agree
    assert _same(_load(part / "ranks" / "rank0.pt")["generator"], _load(part / "ranks" / "rank1.pt")["generator"])
