"""ganlab.postprocess: strict method and sweep configs, every method on a tiny trained MLP checkpoint (shapes,
uint8, batch-size invariance, truncation bound, DRS record), and sweeps on it (per-value configs = single runs,
truncation bound per psi, one DRS calibration per sweep, the series)."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab import postprocess
from ganlab.config import ConfigError, ExperimentConfig, load_pipeline, parse
from ganlab.data.arrays import to_uint8
from ganlab.postprocess import (
    METHODS,
    Context,
    SweepConfig,
    calibrate,
    load_gan,
    load_postprocess,
    method_params,
    parse_run,
    read_postprocess,
    run_method,
    run_sweep,
    sweep_point,
    sweep_runs,
    sweep_series,
    sweep_shared,
)
from ganlab.runtime import seed_everything
from ganlab.samplers.latent import seeded_normal
from ganlab.samplers.truncation import truncated_normal
from ganlab.train import train_gan

PIPELINE = {
    "datasets": ["mnist"],
    "experiments": {"vanilla": {"dataset": "mnist", "nets": "mlp"}},
    "features": {"mnist": {"num_epochs": {"quick": 1, "paper": 1}}},
    "evaluate": {"n_samples": {"quick": 10, "paper": 10}},
    "vanilla": {
        "generator": {"arch": "mlp", "nz": 8, "hidden": [16]},
        "discriminator": {"arch": "mlp", "hidden": [16], "dropout": 0.3},
        "optimizer": {"lr_g": 1.0e-3, "lr_d": 1.0e-3},
        "num_epochs": {"quick": 1, "paper": 1},
    },
}
ENTRY = {"experiment": "vanilla", "dataset": "mnist", "nets": "mlp"}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline(PIPELINE)


@pytest.fixture(scope="module")
def gan(tmp_path_factory):
    """A 12x12 grey MLP GAN trained for a few steps on random 'digits' (bright squares on black)."""
    rng = np.random.default_rng(0)
    images = np.zeros((96, 12, 12, 1), dtype=np.uint8)
    for i, (r, c) in enumerate(rng.integers(0, 8, size=(96, 2))):
        images[i, r : r + 4, c : c + 4] = 255
    cfg = ExperimentConfig.model_validate({**PIPELINE["vanilla"], "batch_size": 16})
    seed_everything(0)  # the initial weights come from the global RNG, seeded at a stage's entry
    state = train_gan(cfg, images, np.zeros(96, dtype=np.int64), num_epochs=1, device=torch.device("cpu"),
                      checkpoint_path=tmp_path_factory.mktemp("ckpt") / "checkpoint.pt")
    return load_gan(state, torch.device("cpu")), images


def ctx(images, batch_size):
    return Context(scale="quick", device=torch.device("cpu"), batch_size=batch_size, real_images=images)


# --- configs ------------------------------------------------------------------------------------------


def test_unknown_method_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"runs\.x\.method: unknown method 'rejection'.*none, truncation, dgflow, ddls, drs"):
        parse_run({**ENTRY, "method": "rejection"}, "runs.x")


@pytest.mark.parametrize(
    "entry, key",
    [
        ({"method": "truncation", "psi": -1.0}, "runs.x.psi"),
        ({"method": "truncation"}, "runs.x.psi"),  # required
        ({"method": "truncation", "psi": "2.0"}, "runs.x.psi"),  # strings are not numbers
        ({"method": "dgflow", "f_div": "kl"}, "runs.x.f_div"),
        ({"method": "dgflow", "etaa": 0.1}, "runs.x.etaa"),  # typo -> unknown key
        ({"method": "ddls", "decay": 0.0}, "runs.x.decay"),
        ({"method": "ddls", "steps": {"quick": 5}}, "runs.x.steps.paper"),
        ({"method": "drs", "threshold": 1.0}, "runs.x.threshold"),
        ({"method": "drs", "mode": "fancy"}, "runs.x.mode"),
        ({"method": "drs", "burn_in": 0}, "runs.x.burn_in"),
        ({"method": "none", "psi": 2.0}, "runs.x.psi"),
    ],
)
def test_bad_values_name_the_key(entry, key):
    with pytest.raises(ConfigError, match=re.escape(key) + ":"):
        parse_run({**ENTRY, **entry}, "runs.x")


def test_defaults_are_the_documented_recipes():
    dg = parse_run({**ENTRY, "method": "dgflow"}, "runs.x")
    assert (dg.f_div, dg.eta, dg.gamma, dg.steps.quick, dg.steps.paper) == ("KL", 0.1, 0.01, 25, 25)
    ddls = parse_run({**ENTRY, "method": "ddls"}, "runs.x")
    assert (ddls.step_size, ddls.steps.paper, ddls.noise_std) == (0.01, 1000, 1.0)
    drs = parse_run({**ENTRY, "method": "drs"}, "runs.x")
    assert (drs.mode, drs.threshold) == ("quantile", 0.7)
    assert method_params(ddls, "quick")["steps"] == ddls.steps.quick and "experiment" not in method_params(ddls, "quick")


def test_load_postprocess_checks_experiment_dataset_and_names(pipeline):
    ok = load_postprocess({"runs": {"vanilla-truncation": {**ENTRY, "method": "truncation", "psi": 2.0}},
                           "sweeps": {"v": {**ENTRY, "method": "drs", "key": "threshold", "values": [0.5, 0.9]}}}, pipeline)
    assert ok.runs["vanilla-truncation"].psi == 2.0 and ok.sweeps["v"].values == [0.5, 0.9]
    assert load_postprocess(None, pipeline).runs == {}
    with pytest.raises(ConfigError, match=r"runs\.a\.experiment: no experiment 'wgan'; allowed: \['vanilla'\]"):
        load_postprocess({"runs": {"a": {"experiment": "wgan", "dataset": "mnist", "nets": "mlp", "method": "none"}}}, pipeline)
    with pytest.raises(ConfigError, match=r"runs\.a\.dataset: 'cifar10', but experiments\.vanilla is 'mnist'"):
        load_postprocess({"runs": {"a": {"experiment": "vanilla", "dataset": "cifar10", "nets": "mlp", "method": "none"}}}, pipeline)
    with pytest.raises(ConfigError, match=r"runs\.a\.nets: 'dcgan', but experiments\.vanilla is 'mlp'"):
        load_postprocess({"runs": {"a": {**ENTRY, "nets": "dcgan", "method": "none"}}}, pipeline)
    with pytest.raises(ConfigError, match=r"letters, digits"):
        load_postprocess({"runs": {"a.b": {**ENTRY, "method": "none"}}}, pipeline)
    with pytest.raises(ConfigError, match=r"postprocess\.yaml\.rnus: unknown key"):
        load_postprocess({"rnus": {}}, pipeline)
    sweep = {"method": "truncation", "key": "psi", "values": [1.0]}
    with pytest.raises(ConfigError, match=r"sweeps\.s\.experiment: no experiment 'wgan'; allowed: \['vanilla'\]"):
        load_postprocess({"sweeps": {"s": {**sweep, "experiment": "wgan", "dataset": "mnist", "nets": "mlp"}}}, pipeline)
    with pytest.raises(ConfigError, match=r"postprocess\.yaml:sweeps\.a\.b: entry names may hold only letters"):
        load_postprocess({"sweeps": {"a.b": {**ENTRY, **sweep}}}, pipeline)


# --- methods on a trained checkpoint --------------------------------------------------------------------

CONFIGS = {
    "none": {},
    "truncation": {"psi": 0.9},
    "dgflow": {"steps": {"quick": 3, "paper": 3}},
    "ddls": {"steps": {"quick": 3, "paper": 3}},
    "drs": {"burn_in": 200, "threshold": 0.6, "calibration_n": {"quick": 64, "paper": 64}},
}


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_shapes_uint8_and_batch_invariance(gan, method):
    g, images = gan
    cfg = parse_run({**ENTRY, "method": method, **CONFIGS[method]}, "runs.x")
    seeds = np.arange(100, 117, dtype=np.int64)
    a, seeds_a, info_a = run_method(cfg, g, seeds, ctx(images, 3))
    b, seeds_b, info_b = run_method(cfg, g, seeds, ctx(images, 16))
    assert a.shape == (17, 12, 12, 1) and a.dtype == np.uint8
    assert seeds_a.dtype == np.int64 and len(seeds_a) == 17
    np.testing.assert_array_equal(seeds_a, seeds_b)
    # uint8 of float values equal to ~1e-6: a rounding boundary may flip one level, nothing more
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    assert info_a["method"] == method and info_a["method_params"] == info_b["method_params"]
    if method != "drs":
        np.testing.assert_array_equal(seeds_a, seeds)  # paired with the baseline sample of the same seed


def _g(g, z):
    with torch.no_grad():
        return to_uint8(g.generator(z)).numpy()


def test_none_equals_the_generator_on_seeded_latents(gan):
    g, images = gan
    seeds = np.arange(5, dtype=np.int64)
    out, _, info = run_method(parse_run({**ENTRY, "method": "none"}, "x"), g, seeds, ctx(images, 2))
    np.testing.assert_array_equal(out, _g(g, seeded_normal(seeds.tolist(), (g.nz,), "cpu")))


def test_truncation_stays_within_psi_and_records_the_convention(gan):
    g, images = gan
    seeds = np.arange(40, dtype=np.int64)
    out, _, info = run_method(parse_run({**ENTRY, "method": "truncation", "psi": 0.5}, "x"), g, seeds, ctx(images, 7))
    z = truncated_normal(seeds.tolist(), (g.nz,), 0.5, "cpu")
    assert z.abs().max() <= 0.5 and z.abs().max() > 0.3
    np.testing.assert_array_equal(out, _g(g, z))
    assert info["truncation"]["psi"] == 0.5 and "resampled" in info["truncation"]["convention"]
    # a psi far beyond any draw is the baseline itself
    wide, _, _ = run_method(parse_run({**ENTRY, "method": "truncation", "psi": 50.0}, "x"), g, seeds, ctx(images, 7))
    np.testing.assert_array_equal(wide, _g(g, seeded_normal(seeds.tolist(), (g.nz,), "cpu")))


@pytest.mark.parametrize("method", ["dgflow", "ddls"])
def test_refiners_with_zero_steps_are_the_baseline_and_move_with_steps(gan, method):
    g, images = gan
    seeds = np.arange(8, dtype=np.int64)
    base = _g(g, seeded_normal(seeds.tolist(), (g.nz,), "cpu"))
    zero = parse_run({**ENTRY, "method": method, "steps": {"quick": 0, "paper": 0}}, "x")
    np.testing.assert_array_equal(run_method(zero, g, seeds, ctx(images, 3))[0], base)
    some = parse_run({**ENTRY, "method": method, "steps": {"quick": 5, "paper": 5}}, "x")
    moved, _, info = run_method(some, g, seeds, ctx(images, 3))
    assert (moved != base).any()
    assert info[method]["steps"] == 5 and info[method]["d"].startswith("d = D's logit")


def test_drs_records_calibration_and_acceptance(gan):
    g, images = gan
    cfg = parse_run({**ENTRY, "method": "drs", **CONFIGS["drs"], "threshold": 0.75}, "x")
    seeds = np.arange(50, dtype=np.int64)
    out, accepted, info = run_method(cfg, g, seeds, ctx(images, 16))
    drs, cal = info["drs"], info["calibration"]
    assert {"mode", "threshold", "acceptance_rate", "n_candidates", "d_M"} <= set(drs)
    assert drs["mode"] == "quantile" and drs["threshold"] == 0.75
    assert drs["acceptance_rate"] == pytest.approx(50 / drs["n_candidates"])
    assert 0.1 < drs["acceptance_rate"] < 0.45  # quantile mode keeps ~1 - threshold of the stream
    assert {"a", "b", "n"} <= set(cal) and cal["n"] == 64 and math.isfinite(cal["a"])
    # accepted candidates are the stream's own seeds (stream 0 = baseline seeds), images = G(z(seed))
    assert len(set(accepted.tolist())) == 50 and accepted.max() < drs["n_candidates"]
    np.testing.assert_array_equal(out, _g(g, seeded_normal(accepted.tolist(), (g.nz,), "cpu")))
    # independent reference for the cut: calibrated logits of the burn-in set, numpy quantile
    assert "logit_cut" in drs and math.isfinite(drs["logit_cut"])


def test_drs_confidence_mode_accepts_by_calibrated_probability(gan):
    g, images = gan
    base = parse_run({**ENTRY, "method": "drs", **CONFIGS["drs"], "mode": "confidence", "max_candidates": 4000}, "x")
    # a threshold the tiny D can meet: the median calibrated probability of the first 200 candidates
    logit_fn, _ = calibrate(g, base, ctx(images, 16))
    with torch.no_grad():
        p = torch.sigmoid(logit_fn(g.generator(seeded_normal(list(range(200)), (g.nz,), "cpu"))).double())
    threshold = float(p.median().clamp(1e-12, 1 - 1e-12))  # a near-perfect D: p ~ 1e-8
    cfg = base.model_copy(update={"threshold": threshold})
    out, accepted, info = run_method(cfg, g, np.arange(10, dtype=np.int64), ctx(images, 16))
    assert info["drs"]["mode"] == "confidence" and "logit_cut" not in info["drs"]
    a, b = info["calibration"]["a"], info["calibration"]["b"]
    with torch.no_grad():
        d = g.discriminator(g.generator(seeded_normal(accepted.tolist(), (g.nz,), "cpu")))
    assert (torch.sigmoid(a * d.double() + b) >= threshold - 1e-9).all()
    assert 0.0 < info["drs"]["acceptance_rate"] <= 1.0



# --- sweeps -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"method": "rejection", "key": "psi", "values": [1.0]},
         r"sweeps\.s\.method: unknown method 'rejection'; allowed: none, truncation, dgflow, ddls, drs"),
        ({"method": "truncation", "key": "threshold", "values": [0.5]},
         r"sweeps\.s\.key: 'threshold' is not a numeric option of method truncation; allowed: psi$"),
        ({"method": "dgflow", "key": "f_div", "values": [1.0]},  # an option, but not a numeric one
         r"sweeps\.s\.key: 'f_div' is not a numeric option of method dgflow; allowed: eta, gamma, steps$"),
        ({"method": "none", "key": "psi", "values": [1.0]}, r"sweeps\.s\.key: 'psi' .* allowed: none \(method none"),
        ({"method": "truncation", "key": "psi", "values": [2.0, 1.0]},
         r"sweeps\.s\.values: must be strictly increasing \(sorted, no repeats\), got \[2\.0, 1\.0\]"),
        ({"method": "truncation", "key": "psi", "values": [1.0, 1.0]},
         r"sweeps\.s\.values: must be strictly increasing"),
        ({"method": "truncation", "key": "psi", "values": []}, r"sweeps\.s\.values: need one or more numbers > 0"),
        ({"method": "truncation", "key": "psi", "values": [0.0, 1.0]},
         r"sweeps\.s\.values: psi = 0\.0 is not valid for method truncation \(.*\); allowed: numbers > 0$"),
        ({"method": "truncation", "key": "psi", "values": [-0.5]}, r"sweeps\.s\.values: psi = -0\.5 .*numbers > 0$"),
        ({"method": "drs", "key": "threshold", "values": [0.5, 1.0]},
         r"sweeps\.s\.values: threshold = 1\.0 .*allowed: numbers in \(0, 1\)$"),
        ({"method": "dgflow", "key": "steps", "values": [0, 2.5]}, r"sweeps\.s\.values: steps = 2\.5 .*integers >= 0$"),
        ({"method": "truncation", "key": "psi", "values": ["1.0"]}, r"sweeps\.s\.values\.0: expected a number"),
        ({"method": "truncation", "key": "psi", "values": [True]}, r"sweeps\.s\.values\.0: expected a number"),
        ({"method": "truncation", "key": "psi", "values": [1.0], "psi": 2.0}, r"sweeps\.s\.psi: it is the swept key"),
        ({"method": "dgflow", "key": "eta", "values": [0.1], "etaa": 0.2},
         r"sweeps\.s\.etaa: unknown option of method dgflow \(misspelled\?\); allowed: f_div, gamma, steps$"),
        ({"method": "dgflow", "key": "eta", "values": [0.1], "f_div": "kl"}, r"sweeps\.s\.f_div: Input should be 'KL'"),
        ({"method": "drs", "key": "threshold", "values": [0.5], "calibration_n": {"quick": 5}},
         r"sweeps\.s\.calibration_n\.paper: required key is missing"),
        ({"key": "psi", "values": [1.0]}, r"sweeps\.s\.method: required key is missing"),
    ],
    ids=["unknown_method", "key_of_another_method", "non_numeric_key", "method_without_numbers", "unsorted",
         "repeated", "empty", "psi_zero", "psi_negative", "drs_threshold_1", "integer_option", "string", "bool",
         "key_also_fixed", "option_typo", "bad_option", "incomplete_scaled_option", "no_method"],
)
def test_sweep_config_errors_name_the_key_and_the_allowed_values(pipeline, entry, message):
    with pytest.raises(ConfigError, match=r"^postprocess\.yaml:" + message):
        load_postprocess({"sweeps": {"s": {**ENTRY, **entry}}}, pipeline)


def test_sweep_configs_are_the_single_run_configs():
    drs = SweepConfig(**ENTRY, method="drs", key="threshold", values=[0.5, 0.6, 0.9], mode="confidence", burn_in=300)
    runs = list(sweep_runs(drs))
    assert [x for x, _ in runs] == [0.5, 0.6, 0.9]
    for x, cfg in runs:
        assert cfg == parse_run({**ENTRY, "method": "drs", "mode": "confidence", "burn_in": 300, "threshold": x}, "r")
    # a scale-dependent option takes the value at both scales; an int given for a float option becomes a float
    steps = parse(SweepConfig, {**ENTRY, "method": "dgflow", "key": "steps", "values": [0, 5], "eta": 0.2}, "s")
    assert [cfg for _, cfg in sweep_runs(steps)] == [
        parse_run({**ENTRY, "method": "dgflow", "eta": 0.2, "steps": {"quick": n, "paper": n}}, "r") for n in (0, 5)]
    psi = SweepConfig(**ENTRY, method="truncation", key="psi", values=[1, 2.5])
    assert [(x, type(x)) for x, _ in sweep_runs(psi)] == [(1.0, float), (2.5, float)]


def test_the_repo_sweeps_contain_their_single_runs():
    # postprocess.yaml: each sweep passes through the value of its experiment's `runs` entry for the same method
    # with exactly that entry's config (report 003: DRS 0.7, vanilla truncation psi 2.0)
    data = read_postprocess(ROOT / "postprocess.yaml")
    runs = {name: parse_run(entry, name) for name, entry in data["runs"].items()}
    assert {"vanilla-drs", "vanilla-truncation"} <= set(data["sweeps"])
    for name, entry in data["sweeps"].items():
        sweep = parse(SweepConfig, entry, name)
        same = [r for r in runs.values() if (r.experiment, r.method) == (sweep.experiment, sweep.method)]
        assert same, name
        for run in same:
            assert getattr(run, sweep.key) in sweep.values and sweep.run(getattr(run, sweep.key)) == run, name
    assert parse(SweepConfig, data["sweeps"]["vanilla-truncation"], "s").values == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def test_truncation_sweep_on_a_trained_generator(gan):
    g, images = gan
    sweep = SweepConfig(**ENTRY, method="truncation", key="psi", values=[0.5, 1.0, 3.0])
    seeds = np.arange(30, dtype=np.int64)
    points, bounds = [], []
    for step in run_sweep(sweep, g, seeds, ctx(images, 7)):
        np.testing.assert_array_equal(step.seeds, seeds)
        z = truncated_normal(step.seeds.tolist(), (g.nz,), step.x, "cpu")  # (30, nz), the latents of the samples
        assert z.abs().max() <= step.x
        bounds.append(float(z.abs().max()))
        np.testing.assert_array_equal(step.images, _g(g, z))
        single, _, info = run_method(parse_run({**ENTRY, "method": "truncation", "psi": step.x}, "r"), g, seeds,
                                     ctx(images, 16))
        np.testing.assert_array_equal(step.images, single)
        assert step.info["truncation"] == info["truncation"] and step.info["method_params"] == {"method": "truncation",
                                                                                                "psi": step.x}
        points.append(sweep_point(sweep, step, {"fid": float(step.images.mean())}))
        assert sweep_shared(sweep, step) == {}
    assert bounds[0] > 0.4 and bounds[1] > 0.8 and bounds[2] > 2.0  # the bound is reached, not just respected
    series = sweep_series(sweep, points[::-1], {"seed": 0}, scale="quick")
    assert [p["psi"] for p in series["points"]] == [0.5, 1.0, 3.0]  # one per value, in order
    assert [p["fid"] for p in series["points"]] == [p["fid"] for p in points]
    assert (series["experiment"], series["method"], series["sweep"]) == ("vanilla", "truncation", "psi")
    assert series["method_params"] == {"method": "truncation"} and points[0]["first_sample_seed"] == 0
    with pytest.raises(ValueError, match="repeated"):
        sweep_series(sweep, points + points[:1], {}, scale="quick")


def test_drs_sweep_calibrates_once_and_matches_single_runs(gan, monkeypatch):
    g, images = gan
    calls, original = [], METHODS["drs"].prepare

    def counting(*args):  # the registry's own preparation (calibrate), counted
        calls.append(args[1].calibration_n.quick)
        return original(*args)

    monkeypatch.setitem(postprocess.METHODS, "drs", dataclasses.replace(METHODS["drs"], prepare=counting))
    options = {"burn_in": 200, "calibration_n": {"quick": 64, "paper": 64}}
    sweep = SweepConfig(**ENTRY, method="drs", key="threshold", values=[0.5, 0.8], **options)
    seeds = np.arange(20, dtype=np.int64)
    steps = list(run_sweep(sweep, g, seeds, ctx(images, 16)))
    assert calls == [64]
    points = [sweep_point(sweep, s, {"fid": 0.0}) for s in steps]
    assert [p["threshold"] for p in points] == [0.5, 0.8]
    assert points[0]["acceptance_rate"] > points[1]["acceptance_rate"]  # quantile mode keeps ~1 - threshold
    assert all(p["acceptance_rate"] == pytest.approx(20 / p["n_candidates"]) and "calibration" not in p for p in points)
    assert sweep_shared(sweep, steps[0])["calibration"]["n"] == 64
    for step in steps:  # a sweep point is the single run (which calibrates for itself)
        single, accepted, _ = run_method(parse_run({**ENTRY, "method": "drs", **options, "threshold": step.x}, "r"),
                                         g, seeds, ctx(images, 16))
        np.testing.assert_array_equal(step.seeds, accepted)
        np.testing.assert_array_equal(step.images, single)
    # sweeping the calibration size itself refits the head per value, and each point records its own
    calls.clear()
    per_value = SweepConfig(**ENTRY, method="drs", key="calibration_n", values=[32, 64], burn_in=200)
    steps = list(run_sweep(per_value, g, seeds, ctx(images, 16)))
    assert calls == [32, 64] and sweep_shared(per_value, steps[0]) == {}
    assert [sweep_point(per_value, s, {})["calibration"]["n"] for s in steps] == [32, 64]
