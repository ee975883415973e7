"""Learning curves (`ganlab.curves`): the points are the scores of `ganlab.scoring.score` on the generator of that
epoch, scoring leaves training bit-identical, resume keeps the points, the convergence rule both ways; and the
mixture-drift record (`ganlab.modules.prior_changed`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganlab import catalogue as cat
from ganlab.config import ExperimentConfig
from ganlab.curves import CURVE_METRICS, CurveScorer, curve_rows
from ganlab.features import FeatureNet, compute_reference
from ganlab.modules import load_sampler, prior_changed
from ganlab.nets.classifier import build_feature_net
from ganlab.sampling import evaluation_seeds, generate
from ganlab.scoring import score
from ganlab.train import train_gan
from test_train import small_config as train_small_config

CPU = torch.device("cpu")


def small_config(**overrides) -> ExperimentConfig:
    """test_train's small MLP recipe, three epochs by default."""
    return train_small_config(**({"num_epochs": {"quick": 3, "paper": 3}} | overrides))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, size=(64, 28, 28, 1), dtype=np.uint8),
            "y_train": rng.integers(0, 10, size=64), "x_test": rng.integers(0, 256, size=(40, 28, 28, 1), dtype=np.uint8)}


@pytest.fixture(scope="module")
def net() -> FeatureNet:
    torch.manual_seed(0)
    model = build_feature_net("lenet", 1, 28, 10, 16).eval()
    return FeatureNet(model, "mnist-lenet16", "0" * 64)


def scorer(net, data, every=2, last=3, n=40) -> CurveScorer:
    return CurveScorer.build(net, data["x_test"], n_samples=n, seed=1, nearest_k=3, eval_every=every,
                             last_epoch=last, device=CPU)


def train(tmp, data, cfg, curve=None, epochs=3):
    torch.manual_seed(0)  # initial weights come from the global RNG, seeded once by the stage
    return train_gan(cfg, data["x_train"], data["y_train"], num_epochs=epochs, device=CPU,
                     checkpoint_path=tmp / "checkpoint.pt", num_classes=10, curve=curve)


def test_points_at_every_eval_epoch_and_the_last_equal_an_independent_score(tmp_path, net, data):
    curve = scorer(net, data, every=2, last=3)
    state = train(tmp_path, data, small_config(), curve)
    assert [("curve" in h) for h in state["history"]] == [False, True, True]  # epochs 2 (every 2) and 3 (the last)
    last = state["history"][-1]["curve"]
    assert set(last) == set(CURVE_METRICS)
    # the same numbers from the trained checkpoint, scored the long way round
    images = generate(load_sampler(state, CPU), evaluation_seeds(40, 1), device=CPU)
    reference = compute_reference(net, data["x_test"][:40], device=CPU)
    expected = score(images, net, reference, nearest_k=3, device=CPU, kid=False)
    assert last == {k: expected[k] for k in last}
    # and they are not the numbers of the untrained-at-epoch-2 generator
    assert state["history"][1]["curve"] != last


def test_scoring_leaves_training_bit_identical(tmp_path, net, data):
    with_curves = train(tmp_path / "a", data, small_config(generator={"arch": "mlp", "nz": 8, "hidden": [16, 32],
                                                                      "batch_norm": True}), scorer(net, data, every=1))
    without = train(tmp_path / "b", data, small_config(generator={"arch": "mlp", "nz": 8, "hidden": [16, 32],
                                                                  "batch_norm": True}))
    for part in ("generator", "discriminator", "opt_g", "opt_d"):
        a, b = with_curves[part], without[part]
        if part.startswith("opt"):
            a, b = a["state"], b["state"]
            for k in a:
                for name in a[k]:
                    assert torch.equal(torch.as_tensor(a[k][name]), torch.as_tensor(b[k][name])), (part, k, name)
        else:  # BatchNorm running statistics included: scoring runs G in eval mode
            for name in a:
                assert torch.equal(a[name], b[name]), (part, name)
    assert [h["loss_d"] for h in with_curves["history"]] == [h["loss_d"] for h in without["history"]]


def test_resume_keeps_the_points(tmp_path, net, data):
    cfg = small_config()
    first = train(tmp_path, data, cfg, scorer(net, data, every=1), epochs=2)
    resumed = train(tmp_path, data, cfg, scorer(net, data, every=1), epochs=3)
    whole = train(tmp_path / "whole", data, cfg, scorer(net, data, every=1), epochs=3)
    assert resumed["history"][:2] == [h | {"seconds": r["seconds"]} for h, r in zip(first["history"], resumed["history"])]
    assert [h["curve"] for h in resumed["history"]] == [h["curve"] for h in whole["history"]]


def test_resume_in_another_curve_protocol_drops_the_old_points_and_says_which(tmp_path, net, data, capsys):
    cfg = small_config()
    train(tmp_path, data, cfg, scorer(net, data, every=1, n=40), epochs=2)
    other = scorer(net, data, every=1, n=32)  # another N: its points are not comparable with the first two
    resumed = train(tmp_path, data, cfg, other, epochs=3)
    assert "points of epochs [1, 2] dropped" in capsys.readouterr().out
    assert ["curve" in h for h in resumed["history"]] == [False, False, True]
    assert resumed["curve_protocol"] == other.comparable() and other.missing(resumed["history"]) == [1, 2]
    # the same protocol keeps them, whatever eval_every
    kept = train(tmp_path, data, cfg, scorer(net, data, every=2, n=32), epochs=4)
    assert ["curve" in h for h in kept["history"]] == [False, False, True, True]


def test_curve_rows_accumulate_training_seconds():
    history = [{"epoch": 1, "seconds": 2.0}, {"epoch": 2, "seconds": 3.0, "curve": {"fid": 9.0}},
               {"epoch": 3, "seconds": 4.0, "curve": {"fid": 7.0}}]
    assert curve_rows(history, seed=5) == [{"seed": 5, "epoch": 2, "train_seconds": 5.0, "fid": 9.0},
                                           {"seed": 5, "epoch": 3, "train_seconds": 9.0, "fid": 7.0}]


def test_convergence_rule_both_ways():
    assert cat.convergence([900.0, 500.0, 490.0, 480.0]) == "converged"  # last three: 500 -> 480 is 4 %
    assert cat.convergence([900.0, 500.0, 480.0, 470.0]) == "still improving"  # 500 -> 470 is 6 %
    assert cat.convergence([900.0, 500.0, 400.0]) == "still improving"  # 20 %
    assert cat.convergence([400.0, 420.0, 390.0]) == "converged"  # 2.5 %: noise, not progress
    assert cat.convergence([100.0, 96.0]) == "too few points"


@pytest.mark.parametrize("lr_prior, moved", [(1.0e-9, False), (1.0e-2, True)])
def test_prior_changed_shows_a_tiny_gm_lr_freezes_the_mixture(tmp_path, data, lr_prior, moved):
    cfg = small_config(prior="supervised_mixture", sigma=1.7, c=3.0, lr_prior=lr_prior, loss="ns",
                       generator={"arch": "mlp", "nz": 8, "hidden": [16, 32]})
    state = train(tmp_path, data, cfg, epochs=1)
    changed = prior_changed(state)
    assert set(changed) == {"mu", "sigma"}
    if moved:
        assert changed["mu"] > 0.9 and changed["sigma"] > 0.9
    else:  # 8 Adam steps of ~1e-9 on entries of order 1 to 3: below float32's spacing there (~1e-7)
        assert changed["sigma"] == 0.0 and changed["mu"] < 0.05
    assert prior_changed(train(tmp_path / "normal", data, small_config(), epochs=1)) == {}
