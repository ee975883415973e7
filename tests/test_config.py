"""Config validation: every bad value is refused with a message naming the key and what is allowed."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml

from ganlab.config import ConfigError, load_experiment, load_pipeline
from ganlab.recipe import load_recipe

MNIST_MLP = {"dataset": "mnist", "nets": "mlp"}


def _error(params: dict, experiment: str = "vanilla") -> str:
    # load_recipe: the shape and types (ganlab.config) and the names a recipe picks from the registries
    with pytest.raises(ConfigError) as info:
        load_recipe(params, experiment)
    return str(info.value)


def test_project_params_are_valid(params):
    pipeline, cfg = load_experiment(params, "vanilla")
    assert pipeline.scale == "quick"
    assert cfg.optimizer.lr_g == pytest.approx(1.0e-4)
    assert cfg.num_epochs.at("paper") == 100


def test_unknown_key_is_named(params):
    params["vanilla"]["optimiser"] = params["vanilla"].pop("optimizer")
    message = _error(params)
    assert "vanilla.optimiser: unknown key" in message
    assert "vanilla.optimizer: required key is missing" in message


def test_string_for_float_is_refused_with_the_yaml_hint(params):
    # What PyYAML makes of `lr_g: 2e-4`
    params["vanilla"]["optimizer"]["lr_g"] = yaml.safe_load("x: 2e-4")["x"]
    assert params["vanilla"]["optimizer"]["lr_g"] == "2e-4"
    message = _error(params)
    assert "vanilla.optimizer.lr_g" in message and "2.0e-4" in message


@pytest.mark.parametrize("lr", [-1.0e-4, 0.0])
def test_non_positive_learning_rate(params, lr):
    params["vanilla"]["optimizer"]["lr_d"] = lr
    message = _error(params)
    assert "vanilla.optimizer.lr_d" in message and "greater than 0" in message


def test_integer_for_float_is_accepted(params):
    params["vanilla"]["optimizer"]["lr_d"] = 1
    _, cfg = load_experiment(params, "vanilla")
    assert cfg.optimizer.lr_d == 1.0


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (("loss",), "nss", "vanilla.loss: unknown loss 'nss'; allowed: ['bigan', "),
        (("generator", "arch"), "mlpp", "generator.arch: unknown architecture 'mlpp'"),
        (("generator", "nzz"), 100, "generator.nzz: unknown key"),
        (("n_critic",), 0, "vanilla.n_critic"),
        (("batch_size",), 64.5, "vanilla.batch_size"),
        (("num_epochs", "quick"), "3", "vanilla.num_epochs.quick"),
        (("optimizer", "name"), "sgd", "vanilla.optimizer.name"),
    ],
)
def test_bad_experiment_values(params, path, value, expected):
    node = params["vanilla"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert expected in _error(params)


def test_misspelled_top_level_key(params):
    params["gmgn"] = {"sigma": 1.4}  # what `dvc exp run -S gmgn.sigma=1.4` would add
    with pytest.raises(ConfigError, match="gmgn: unknown top-level key"):
        load_pipeline(params)


def test_missing_section(params):
    del params["evaluate"]
    with pytest.raises(ConfigError, match="evaluate: required key is missing"):
        load_pipeline(params)


def test_experiment_on_a_dataset_not_enabled(params):
    params["experiments"]["vanilla"] = {"dataset": "cifar10", "nets": "mlp"}
    with pytest.raises(ConfigError, match="experiments.vanilla: dataset 'cifar10' is not in datasets"):
        load_pipeline(params)


def test_unknown_scale(params):
    params["scale"] = "huge"
    with pytest.raises(ConfigError, match="scale"):
        load_pipeline(params)


def test_validate_stage_exits_2_and_touches_nothing(root, params, tmp_path):
    bad = copy.deepcopy(params)
    bad["vanilla"]["optimizer"]["lr_g"] = "2e-4"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(bad))
    out, resolved = tmp_path / "params_valid.json", tmp_path / "resolved"
    out.write_text("previous output\n")
    (resolved / "vanilla.json").parent.mkdir()
    (resolved / "vanilla.json").write_text("previous recipe\n")
    proc = subprocess.run(
        [sys.executable, str(root / "stages" / "validate.py"), "--params", str(params_file), "--out", str(out),
         "--resolved", str(resolved)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("error: vanilla.optimizer.lr_g: expected a number")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert out.read_text() == "previous output\n"
    assert [p.name for p in resolved.iterdir()] == ["vanilla.json"] and (resolved / "vanilla.json").read_text() == "previous recipe\n"


def test_validate_writes_each_recipe_with_a_sweep_points_base_merged_in(root, params, tmp_path):
    params["experiments"] = {"gmgan": MNIST_MLP, "gmgan_sigma1p1": MNIST_MLP}
    params["probes"] = params["interpolations"] = {}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    (tmp_path / "resolved").mkdir()
    (tmp_path / "resolved" / "vanilla.json").write_text("{}")  # no longer in `experiments`: removed
    proc = subprocess.run(
        [sys.executable, str(root / "stages" / "validate.py"), "--params", str(params_file),
         "--out", str(tmp_path / "ok.json"), "--resolved", str(tmp_path / "resolved")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "resolved").iterdir()) == ["gmgan.json", "gmgan_sigma1p1.json"]
    base = json.loads((tmp_path / "resolved" / "gmgan.json").read_text())
    point = json.loads((tmp_path / "resolved" / "gmgan_sigma1p1.json").read_text())
    assert base == params["gmgan"] and point == {**params["gmgan"], "sweep_of": "gmgan", "sigma": 1.1}


def test_per_experiment_seeds_override_the_list_and_start_with_its_first(params):
    params["seeds"] = [0]
    params["experiments"]["vanilla"]["seeds"] = [0, 1, 2]
    params["experiments"]["wgan"].pop("seeds", None)  # whatever the committed params give it
    pipeline, cfg = load_experiment(params, "vanilla", seed=2)
    assert pipeline.seeds_of("vanilla") == [0, 1, 2] and cfg.seed == 2
    assert pipeline.seeds_of("wgan") == [0]  # the others keep the top-level list
    with pytest.raises(ConfigError, match=r"seed 1 is not among wgan's training seeds \[0\]"):
        load_experiment(params, "wgan", seed=1)
    params["experiments"]["vanilla"]["seeds"] = [1, 2, 3]  # sweeps, probes, interpolations use seeds[0]
    with pytest.raises(ConfigError, match=r"experiments.vanilla.seeds: .*starting with seeds\[0\] = 0"):
        load_pipeline(params)
    params["experiments"]["vanilla"]["seeds"] = [0, 1, 1]
    with pytest.raises(ConfigError, match="experiments.vanilla.seeds: distinct"):
        load_pipeline(params)


def test_a_probe_entry_repeats_dataset_and_nets_not_the_seeds(params):
    params["experiments"]["bigan_mnist"]["seeds"] = [0, 1, 2]
    assert load_pipeline(params).probes["bigan_mnist"].place() == ("mnist", "mlp")
    params["probes"]["bigan_mnist"] = {"dataset": "mnist", "nets": "dcgan"}
    with pytest.raises(ConfigError, match="probes.bigan_mnist: must name an experiment"):
        load_pipeline(params)
