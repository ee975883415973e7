"""Training seeds and sweep points: the `seeds` list and `sweep_of` sections are validated, every seed is trained
through the real stage into its own folder (the first seed's run does not depend on the others), and the
report aggregates the seeds' losses."""

from __future__ import annotations

import copy
import csv
import json

import numpy as np
import pytest
import torch

from ganlab.config import ConfigError, load_experiment, load_pipeline, swept_key
from ganlab.report import load_training
from repo_copy import run_stage, stage_env, tiny_params, train_args, write_params, write_tiny_dataset


def _pipeline_error(params: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_pipeline(params)
    return str(info.value)


@pytest.mark.parametrize("seeds, expected", [
    ([], "seeds: a non-empty list of distinct integers >= 0, got []"),
    ([0, 1, 0], "seeds: a non-empty list of distinct integers >= 0, got [0, 1, 0]"),
    ([-1], "seeds.0: Input should be greater than or equal to 0"),
    (["1"], "seeds.0: expected a number, got the string '1'"),
])
def test_bad_seed_lists_are_refused(params, seeds, expected):
    params["seeds"] = seeds
    assert expected in _pipeline_error(params)


def test_a_seed_inside_a_section_is_refused_naming_the_list(params):
    params["vanilla"]["seed"] = 3
    assert "vanilla.seed: the training seed comes from the top-level `seeds` list (now [0])" in _pipeline_error(params)


def test_an_experiment_name_with_a_dot_is_refused(params):
    params["experiments"]["gmgan_sigma1.4"] = {"dataset": "mnist", "nets": "mlp"}
    params["gmgan_sigma1.4"] = {"sweep_of": "gmgan", "sigma": 1.4}
    assert "experiments.gmgan_sigma1.4: an experiment name may hold letters, digits, _ and - only" in _pipeline_error(params)


def test_load_experiment_takes_the_seed_from_the_list(params):
    params["seeds"] = [4, 7]
    for entry in params["experiments"].values():  # whatever the committed params give each experiment
        entry.pop("seeds", None)
    assert load_experiment(params, "vanilla")[1].seed == 4  # the first by default
    assert load_experiment(params, "vanilla", seed=7)[1].seed == 7
    with pytest.raises(ConfigError, match=r"seeds: seed 5 is not among vanilla's training seeds \[4, 7\]"):
        load_experiment(params, "vanilla", seed=5)


def test_the_project_sweep_points_differ_from_gmgan_in_their_knob_only(params):
    assert swept_key("gmgan_sigma1p1", params) == "sigma" and params["gmgan_sigma1p1"]["sigma"] == 1.1
    assert swept_key("gmgan_sigma1p4", params) == "sigma"
    assert swept_key("gmgan_lr_prior8e-5", params) == "lr_prior"
    assert swept_key("gmgan", params) is None and swept_key("vanilla", params) is None


@pytest.mark.parametrize("change, expected", [
    ({"sweep_of": "gmgn"}, "gmgan_sigma1p1.sweep_of: 'gmgn' is not another experiment section; allowed: ["),
    ({"sweep_of": "gmgan_sigma1p1"}, "gmgan_sigma1p1.sweep_of: 'gmgan_sigma1p1' is not another experiment section"),
    ({"sweep_of": "gmgan_sigma1p4"}, "'gmgan_sigma1p4' is itself a sweep point of 'gmgan'"),
    ({"c": 2.0}, "gmgan_sigma1p1: a sweep point sets `sweep_of` and exactly one numeric top-level knob of 'gmgan'; "
                 "got ['c', 'sigma']; allowed: one of ['batch_size', 'c', 'lr_prior', 'sigma']"),
    ({"sigma": None}, "got ['sigma']"),  # sigma: null is no knob value
    ({"loss": "ns"}, "got ['loss', 'sigma']"),
])
def test_a_sweep_point_sets_one_numeric_knob_of_its_base(params, change, expected):
    params["gmgan_sigma1p1"].update(change)
    if change.get("sigma", 0) is None:
        params["gmgan_sigma1p1"] = {"sweep_of": "gmgan", "sigma": None}
        params["gmgan"]["sigma"] = None  # the base has no numeric sigma either
    assert expected in _pipeline_error(params)


def test_a_sweep_point_is_its_base_recipe_with_the_knob_changed(params):
    _, base = load_experiment(params, "gmgan")
    _, point = load_experiment(params, "gmgan_sigma1p1")
    assert point.model_dump() == base.model_dump() | {"sigma": 1.1, "sweep_of": "gmgan"}
    params["gmgan"]["optimizer"]["lr_g"] = 2.0e-4  # a change to the base reaches its points
    assert load_experiment(params, "gmgan_sigma1p1")[1].optimizer.lr_g == 2.0e-4


# --- Through the train stage -------------------------------------------------------------------------------


def _workspace(tmp, seeds):
    tmp.mkdir(parents=True)
    params = tiny_params(num_epochs={"quick": 2, "paper": 2})
    params["seeds"] = seeds
    write_params(tmp / "params.yaml", params)
    write_tiny_dataset(tmp / "data" / "prepared.npz", n_train=128)
    proc = run_stage("train", train_args(tmp), tmp, stage_env(tmp))
    assert proc.returncode == 0, proc.stderr
    return tmp


def _weights(tmp, seed):
    return torch.load(tmp / "train" / f"seed-{seed}" / "checkpoint.pt", map_location="cpu", weights_only=True)


def test_every_seed_trains_into_its_own_folder_and_the_first_does_not_depend_on_the_others(tmp_path):
    both = _workspace(tmp_path / "both", [0, 1])
    alone = _workspace(tmp_path / "alone", [0])
    s0, s1, ref = _weights(both, 0), _weights(both, 1), _weights(alone, 0)
    assert (s0["config"]["seed"], s1["config"]["seed"]) == (0, 1)
    for key, value in ref["generator"].items():
        assert torch.equal(s0["generator"][key], value), key  # seed 0 is the same run with or without seed 1
    assert any(not torch.equal(s0["generator"][k], s1["generator"][k]) for k in s0["generator"])
    assert sorted(p.name for p in (both / "train" / "seed-1" / "grids").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]

    summary = json.loads((both / "metrics" / "tiny.json").read_text())
    assert summary["seeds"] == [0, 1] and [r["seed"] for r in summary["runs"]] == [0, 1]
    finals = [r["final_loss_d"] for r in summary["runs"]]
    assert finals == [s0["history"][-1]["loss_d"], s1["history"][-1]["loss_d"]]
    assert summary["final_loss_d"] == pytest.approx(np.mean(finals), rel=1e-12)
    with open(both / "metrics" / "tiny_losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["seed"], r["epoch"]) for r in rows] == [("0", "1"), ("0", "2"), ("1", "1"), ("1", "2")]


def test_the_report_averages_loss_curves_and_final_losses_over_seeds(tmp_path):
    runs = [{"seed": 0, "final_loss_d": 1.0, "final_loss_g": 2.0}, {"seed": 1, "final_loss_d": 3.0, "final_loss_g": 6.0}]
    (tmp_path / "x.json").write_text(json.dumps({"experiment": "x", "final_loss_d": 2.0, "runs": copy.deepcopy(runs)}))
    with open(tmp_path / "x_losses.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["seed", "epoch", "loss_d", "loss_g", "seconds"])
        writer.writeheader()
        for seed, epoch, d, g in [(0, 1, 1.0, 4.0), (0, 2, 0.5, 3.0), (1, 1, 3.0, 2.0), (1, 2, 1.5, 1.0)]:
            writer.writerow({"seed": seed, "epoch": epoch, "loss_d": d, "loss_g": g, "seconds": 1.0})
    training, curves = load_training(tmp_path)
    assert training["x"]["final_loss_d"].mean == pytest.approx(2.0) and training["x"]["final_loss_d"].n == 2
    assert training["x"]["final_loss_g"].std == pytest.approx(np.std([2.0, 6.0], ddof=1))
    assert [(r["epoch"], r["loss_d"], r["loss_g"]) for r in curves["x"]] == [(1, 2.0, 3.0), (2, 1.0, 2.0)]
