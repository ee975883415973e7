"""ganlab.postprocess: strict method configs, every method on a tiny trained MLP checkpoint (shapes, uint8,
batch-size invariance, truncation bound, DRS record), and the sweep series writer."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from ganlab.config import ConfigError, ExperimentConfig, load_pipeline
from ganlab.data.arrays import to_uint8
from ganlab.postprocess import (
    METHODS,
    Context,
    DRSSweepConfig,
    calibrate,
    load_gan,
    load_postprocess,
    method_params,
    parse_run,
    run_method,
    sweep_series,
)
from ganlab.samplers import seeded_normal, truncated_normal
from ganlab.train import train_gan

PIPELINE = {
    "datasets": ["mnist"],
    "experiments": {"vanilla": "mnist"},
    "features": {"mnist": {"num_epochs": {"quick": 1, "paper": 1}}},
    "evaluate": {"n_samples": {"quick": 10, "paper": 10}},
    "vanilla": {
        "generator": {"arch": "mlp", "nz": 8, "hidden": [16]},
        "discriminator": {"arch": "mlp", "hidden": [16], "dropout": 0.3},
        "optimizer": {"lr_g": 1.0e-3, "lr_d": 1.0e-3},
        "num_epochs": {"quick": 1, "paper": 1},
    },
}
ENTRY = {"experiment": "vanilla", "dataset": "mnist"}


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
                           "drs_sweep": {"vanilla": {**ENTRY, "thresholds": [0.5, 0.9]}}}, pipeline)
    assert ok.runs["vanilla-truncation"].psi == 2.0 and ok.drs_sweep["vanilla"].thresholds == [0.5, 0.9]
    assert load_postprocess(None, pipeline).runs == {}
    with pytest.raises(ConfigError, match=r"runs\.a\.experiment: no experiment 'wgan'; allowed: \['vanilla'\]"):
        load_postprocess({"runs": {"a": {"experiment": "wgan", "dataset": "mnist", "method": "none"}}}, pipeline)
    with pytest.raises(ConfigError, match=r"runs\.a\.dataset: 'cifar10', but experiments\.vanilla is 'mnist'"):
        load_postprocess({"runs": {"a": {"experiment": "vanilla", "dataset": "cifar10", "method": "none"}}}, pipeline)
    with pytest.raises(ConfigError, match=r"letters, digits"):
        load_postprocess({"runs": {"a.b": {**ENTRY, "method": "none"}}}, pipeline)
    with pytest.raises(ConfigError, match=r"postprocess\.yaml\.rnus: unknown key"):
        load_postprocess({"rnus": {}}, pipeline)
    with pytest.raises(ConfigError, match=r"thresholds: must be strictly increasing"):
        load_postprocess({"drs_sweep": {"v": {**ENTRY, "thresholds": [0.7, 0.5]}}}, pipeline)
    with pytest.raises(ConfigError, match=r"thresholds: need one or more values in \(0, 1\)"):
        load_postprocess({"drs_sweep": {"v": {**ENTRY, "thresholds": [0.5, 1.0]}}}, pipeline)


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
    threshold = float(p.median().clamp(1e-6, 1 - 1e-6))
    cfg = base.model_copy(update={"threshold": threshold})
    out, accepted, info = run_method(cfg, g, np.arange(10, dtype=np.int64), ctx(images, 16))
    assert info["drs"]["mode"] == "confidence" and "logit_cut" not in info["drs"]
    a, b = info["calibration"]["a"], info["calibration"]["b"]
    with torch.no_grad():
        d = g.discriminator(g.generator(seeded_normal(accepted.tolist(), (g.nz,), "cpu")))
    assert (torch.sigmoid(a * d.double() + b) >= threshold - 1e-9).all()
    assert 0.0 < info["drs"]["acceptance_rate"] <= 1.0


def test_sweep_run_configs_and_series_x_axis():
    sweep = DRSSweepConfig(**ENTRY, thresholds=[0.5, 0.6, 0.9], mode="confidence", burn_in=300)
    runs = [sweep.run(t) for t in sweep.thresholds]
    assert [r.threshold for r in runs] == [0.5, 0.6, 0.9] and all(r.mode == "confidence" and r.burn_in == 300 for r in runs)
    pts = [{"threshold": t, "fid": f} for t, f in [(0.9, 3.0), (0.5, 1.0), (0.6, 2.0)]]
    series = sweep_series("vanilla", "drs", "threshold", pts, {"seed": 0}, calibration={"a": 1.0})
    xs = [p["threshold"] for p in series["points"]]
    assert xs == sorted(xs) == [0.5, 0.6, 0.9] and [p["fid"] for p in series["points"]] == [1.0, 2.0, 3.0]
    assert (series["experiment"], series["method"], series["sweep"]) == ("vanilla", "drs", "threshold")
    with pytest.raises(ValueError, match="repeated"):
        sweep_series("vanilla", "drs", "threshold", pts + [{"threshold": 0.5}], {})
