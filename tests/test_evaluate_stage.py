"""stages/evaluate.py in-process on tiny inputs: `label_accuracy` lands in the metrics JSON and in MLflow for
samples that carry `labels` (a conditional generator's), and is absent for unconditional samples and for an
autoencoder feature space."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys

import numpy as np
import pytest
import torch

from ganlab.config import FeatureNetConfig, parse
from ganlab.data.arrays import load_prepared
from ganlab.features import compute_reference, load_feature_net, predict, save_feature_net
from ganlab.nets.classifier import build_feature_net
from repo_copy import ROOT, tiny_params, write_params, write_tiny_dataset

CPU = torch.device("cpu")
N_FAKE = 40  # > the feature dimension (16): a non-singular covariance
WRONG = [1, 5, 6, 17, 30]  # the images whose label is changed: accuracy (N_FAKE - 5) / N_FAKE


@pytest.fixture(scope="module")
def evaluate_stage():
    """stages/evaluate.py imported as a module; its `main` is the stage entry."""
    spec = importlib.util.spec_from_file_location("stage_evaluate_under_test", ROOT / "stages" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _workspace(tmp, arch: str) -> tuple[list[str], np.ndarray]:
    """Params (seeds 0 and 1), a prepared dataset, a random `arch` feature network with its references (Inception
    unavailable), seed-0 samples with labels and seed-1 samples without. Returns (stage args, seed-0 labels)."""
    params = tiny_params()
    params["seeds"] = [0, 1]
    write_params(tmp / "params.yaml", params)
    data = load_prepared(write_tiny_dataset(tmp / "prepared.npz", n_train=8, n_test=32))
    torch.manual_seed(0)
    cfg = parse(FeatureNetConfig, {"arch": arch, "feature_dim": 16, "num_epochs": {"quick": 1, "paper": 1}},
                section="features.test")
    model = build_feature_net(arch, 1, 28, 10 if arch == "lenet" else 0, 16).eval()
    save_feature_net(model, tmp / "net.pt", dataset="toy", cfg=cfg, info={})
    net = load_feature_net(tmp / "net.pt", CPU)
    np.savez(tmp / "reference.npz", **compute_reference(net, data["x_test"], device=CPU))
    np.savez(tmp / "inception_reference.npz", unavailable=np.array("no weights in this test"))

    images = np.random.default_rng(1).integers(0, 256, (N_FAKE, 28, 28, 1), dtype=np.uint8)
    seeds = np.arange(N_FAKE, dtype=np.int64)
    labels = predict(model, images, device=CPU) if arch == "lenet" else np.zeros(N_FAKE, dtype=np.int64)
    labels[WRONG] = (labels[WRONG] + 1) % 10
    common = {"images": images, "seeds": seeds, "checkpoint_sha256": "0" * 64, "training_precision": "fp32"}
    (tmp / "samples").mkdir()
    np.savez(tmp / "samples" / "seed-0.npz", **common, training_seed=0, labels=labels)
    np.savez(tmp / "samples" / "seed-1.npz", **common, training_seed=1)
    args = ["--params", str(tmp / "params.yaml"), "--experiment", "tiny", "--samples", str(tmp / "samples"),
            "--data", str(tmp / "prepared.npz"), "--net", str(tmp / "net.pt"), "--reference", str(tmp / "reference.npz"),
            "--inception", str(tmp / "absent.json"), "--inception-reference", str(tmp / "inception_reference.npz"),
            "--out", str(tmp / "metrics"), "--scores", str(tmp / "scores" / "tiny.json")]  # fmt: skip
    return args, labels


def _mlflow_metrics(db_path, training_seed: int) -> dict[str, float]:
    db = sqlite3.connect(db_path)
    (run,) = db.execute(  # the evaluate stage's run of this seed (its model's run, its parent, has the seed too)
        "select p.run_uuid from params p join tags t on t.run_uuid = p.run_uuid and t.key = 'ganlab.stage' "
        "where t.value = 'evaluate' and p.key = 'seed' and p.value = ?", (str(training_seed),)).fetchall()
    return dict(db.execute("select key, value from latest_metrics where run_uuid = ?", run).fetchall())


@pytest.mark.parametrize("arch", ["lenet", "autoencoder"])
def test_label_accuracy_is_recorded_for_labelled_samples_in_a_classifier_space_only(tmp_path, monkeypatch,
                                                                                    evaluate_stage, arch):
    args, labels = _workspace(tmp_path, arch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["stages/evaluate.py", *args])
    evaluate_stage.main()

    labelled = json.loads((tmp_path / "metrics" / "seed-0.json").read_text())
    unlabelled = json.loads((tmp_path / "metrics" / "seed-1.json").read_text())
    assert "label_accuracy" not in unlabelled and "label_accuracy" not in _mlflow_metrics(tmp_path / "m.db", 1)
    if arch == "autoencoder":  # no classes to compare the labels with
        assert "label_accuracy" not in labelled and "label_accuracy" not in _mlflow_metrics(tmp_path / "m.db", 0)
        return
    assert labelled["label_accuracy"] == (N_FAKE - len(WRONG)) / N_FAKE
    assert _mlflow_metrics(tmp_path / "m.db", 0)["label_accuracy"] == pytest.approx(labelled["label_accuracy"])
    assert {k: v for k, v in labelled.items() if k != "label_accuracy"}.keys() == unlabelled.keys()


def test_the_dvc_metrics_are_the_records_numbers_and_their_mean_over_the_seeds(tmp_path, monkeypatch, evaluate_stage):
    args, _ = _workspace(tmp_path, "lenet")
    with np.load(tmp_path / "samples" / "seed-1.npz") as f:  # seed 1: other images, so the mean is not either seed
        seed1 = dict(f)
    seed1["images"] = np.random.default_rng(2).integers(0, 128, seed1["images"].shape, dtype=np.uint8)
    np.savez(tmp_path / "samples" / "seed-1.npz", **seed1)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["stages/evaluate.py", *args])
    evaluate_stage.main()

    records = [json.loads((tmp_path / "metrics" / f"seed-{s}.json").read_text()) for s in (0, 1)]
    per_seed = [json.loads((tmp_path / "scores" / "tiny" / f"seed-{s}.json").read_text()) for s in (0, 1)]
    mean = json.loads((tmp_path / "scores" / "tiny.json").read_text())
    numbers = ["fid", "kid", "precision", "recall", "density", "coverage"]  # no Inception weights in this test
    assert list(per_seed[1]) == numbers and list(per_seed[0]) == [*numbers, "label_accuracy"]
    assert all(per_seed[s][k] == records[s][k] for s in (0, 1) for k in per_seed[s])
    # a key in the mean only when every seed has it: seed 1's samples carry no labels
    assert list(mean) == numbers
    assert mean["fid"] == pytest.approx((records[0]["fid"] + records[1]["fid"]) / 2, rel=1e-12)
    assert mean["recall"] == pytest.approx((records[0]["recall"] + records[1]["recall"]) / 2, rel=1e-12)
    assert records[0]["fid"] != records[1]["fid"]
