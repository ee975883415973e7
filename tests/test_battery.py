"""The feature space's sanity battery (`ganlab.battery`): every set's shape, dtype and determinism on small
synthetic splits of each dataset's shape, what `half_classes` may contain, skipped sets, the bars, and (when
data/prepared/mnist.npz exists) the orderings the battery must show in the MNIST domain space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab.battery import (
    BATTERY,
    BLUR_SIGMA_PX,
    RealImages,
    battery_checks,
    battery_protocol,
    battery_record,
    build_battery,
    score_battery,
)
from ganlab.features import FeatureNet, compute_reference
from ganlab.nets.classifier import build_feature_net

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT / "data" / "prepared" / "mnist.npz"
BUDGET_BATCHES = 150  # the MNIST test's training budget: one epoch cut to 150 batches of 128


def _real(size: int = 28, channels: int = 1, *, n: int = 12, n_test: int = 60, labelled: bool = True) -> RealImages:
    """Random uint8 splits (every image distinct), test labels 0..3 (or -1 when unlabelled)."""
    rng = np.random.default_rng(size * 10 + channels)
    train = rng.integers(0, 256, (40, size, size, channels), dtype=np.uint8)
    test = rng.integers(0, 256, (n_test, size, size, channels), dtype=np.uint8)
    labels = np.arange(n_test) % 4 if labelled else np.full(n_test, -1)
    return RealImages(train, test, labels, n)


def _rows(images: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in images}


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3), (64, 3)])
def test_every_set_has_n_uint8_images_of_the_data_shape(size, channels):
    sets, skipped = build_battery(_real(size, channels), seed=0)
    assert skipped == {}
    assert list(sets) == list(BATTERY)
    for name, images in sets.items():
        assert images.dtype == np.uint8, name
        assert images.shape == (12, size, size, channels), name


def test_sets_are_deterministic_for_a_seed_and_change_with_it():
    real = _real()
    first, _ = build_battery(real, seed=3)
    again, _ = build_battery(real, seed=3)
    other, _ = build_battery(real, seed=4)
    for name in BATTERY:
        np.testing.assert_array_equal(first[name], again[name], err_msg=name)
        assert not np.array_equal(first[name], other[name]), name


def test_a_set_alone_is_the_set_in_the_battery():
    # each set draws from its own generator: building one set never depends on the others
    from ganlab.battery import _set_rng

    real = _real()
    sets, _ = build_battery(real, seed=5)
    for name, entry in BATTERY.items():
        np.testing.assert_array_equal(entry.build(real, _set_rng(5, name)), sets[name], err_msg=name)


def test_half_classes_holds_only_the_lower_classes_and_no_reference_image():
    real = _real(n=12, n_test=120)
    sets, _ = build_battery(real, seed=0)
    label_of = {image.tobytes(): label for image, label in zip(real.test, real.test_labels)}
    labels = [label_of[image.tobytes()] for image in sets["half_classes"]]  # every image is a test image
    assert set(labels) <= {0, 1}  # 4 classes: the lower half is 0, 1
    assert set(labels) == {0, 1}
    assert not _rows(sets["half_classes"]) & _rows(real.test[: real.n])
    assert len(_rows(sets["half_classes"])) == real.n  # drawn without replacement


def test_sets_from_test_images_use_held_out_ones_only():
    real = _real()
    sets, _ = build_battery(real, seed=0)
    reference = _rows(real.test[: real.n])
    assert _rows(sets["one_image"]) <= _rows(real.held_out) and len(_rows(sets["one_image"])) == 1
    assert _rows(sets["inverted"]) <= {(255 - image).tobytes() for image in real.held_out}
    assert not _rows(255 - sets["inverted"]) & reference
    assert _rows(sets["real_train"]) <= _rows(real.train) and len(_rows(sets["real_train"])) == real.n


def test_noise_and_corruptions_are_what_they_say():
    real = _real(n=200, n_test=400)
    sets, _ = build_battery(real, seed=0)
    salt = sets["salt_and_pepper"]
    assert set(np.unique(salt)) == {0, 255}
    assert (salt == 255).mean() == pytest.approx(0.10, abs=0.005)
    grey = sets["gaussian_grey_noise"].astype(float)
    assert grey.mean() == pytest.approx(128, abs=0.5) and grey.std() == pytest.approx(30, abs=0.5)
    uniform = sets["uniform_noise"].astype(float)
    assert uniform.mean() == pytest.approx(127.5, abs=1) and uniform.min() == 0 and uniform.max() == 255
    # shuffled pixels: each image is a held-out image with the same pixel values in other places
    held_out_histograms = {np.sort(image, axis=None).tobytes() for image in real.held_out}
    for image in sets["shuffled_pixels"][:10]:
        assert np.sort(image, axis=None).tobytes() in held_out_histograms
    # blurred: smoother than the held-out images it came from (neighbour differences shrink)
    roughness = lambda x: np.abs(np.diff(x.astype(float), axis=1)).mean()  # noqa: E731
    assert roughness(sets["blurred"]) < roughness(real.held_out) / 4
    assert BLUR_SIGMA_PX == 1.5


def test_colour_noise_keeps_grey_noise_grey():
    sets, _ = build_battery(_real(32, 3), seed=0)
    for name in ("gaussian_grey_noise", "salt_and_pepper"):
        image = sets[name]
        assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all(), name
    assert not (sets["uniform_noise"][..., 0] == sets["uniform_noise"][..., 1]).all()


def test_unlabelled_data_skips_half_classes_and_too_small_a_test_split_skips_held_out_sets():
    sets, skipped = build_battery(_real(labelled=False), seed=0)
    assert skipped == {"half_classes": "the dataset has no labels"}
    assert set(sets) == set(BATTERY) - {"half_classes"}

    sets, skipped = build_battery(_real(n=12, n_test=20), seed=0)  # 8 held out < n = 12
    assert set(skipped) == {"half_classes", "shuffled_pixels", "blurred", "inverted"}
    assert "needs 12 held-out test images" in skipped["blurred"]
    assert set(sets) == {"real_train", "one_image", "uniform_noise", "gaussian_grey_noise", "salt_and_pepper"}


def _scores(**overrides: dict[str, float]) -> dict[str, dict[str, float]]:
    """A battery result that meets every bar; `overrides` replace some sets' metrics."""
    good = {"fid": 1000.0, "precision": 0.05, "recall": 0.0, "density": 0.02, "coverage": 0.01}
    scores = {name: dict(good) for name in BATTERY}
    scores["real_train"] = {"fid": 10.0, "precision": 0.95, "recall": 0.95, "density": 1.0, "coverage": 0.5}
    scores["half_classes"] = {"fid": 300.0, "precision": 0.95, "recall": 0.5, "density": 1.0, "coverage": 0.25}
    for name, metrics in overrides.items():
        scores[name] = scores[name] | metrics
    return scores


def test_checks_pass_and_fail_at_their_bars():
    names = (
        "noise_precision_at_most_0.2",
        "noise_density_at_most_0.2",
        "noise_and_corruption_fid_at_least_10x_real_train",
        "half_classes_coverage_0.4_to_0.65_of_real_train",
    )
    assert battery_checks(_scores()) == dict.fromkeys(names, True)
    for half_coverage in (0.2, 0.325):  # 0.4 and 0.65 of real_train's 0.5
        at_the_bars = _scores(salt_and_pepper={"precision": 0.2, "density": 0.2}, blurred={"fid": 100.0},
                              half_classes={"coverage": half_coverage})  # fmt: skip
        assert all(battery_checks(at_the_bars).values()), half_coverage
    failing = battery_checks(_scores(uniform_noise={"precision": 0.21}, shuffled_pixels={"density": 0.25},
                                     inverted={"fid": 99.0}, half_classes={"coverage": 0.34}))  # fmt: skip
    assert failing == dict.fromkeys(names, False)
    assert not battery_checks(_scores(half_classes={"coverage": 0.19}))[names[3]]
    # a bar whose sets were not scored is left out, not passed
    unlabelled = {k: v for k, v in _scores().items() if k != "half_classes"}
    assert set(battery_checks(unlabelled)) == set(names[:3])


def test_protocol_names_every_set_once_with_its_description():
    protocol = battery_protocol(n=2000, seed=0, nearest_k=5, skipped={"half_classes": "the dataset has no labels"})
    assert protocol["reference"] == "first n test images"
    assert list(protocol["sets"]) == list(BATTERY)
    assert protocol["kinds"]["real_train"] == "real" and protocol["kinds"]["salt_and_pepper"] == "noise"
    assert {protocol["kinds"][name] for name in BATTERY} == {"real", "subset", "collapse", "noise", "corruption"}
    assert "sigma 1.5 px" in protocol["sets"]["blurred"]
    assert protocol["skipped"] == {"half_classes": "the dataset has no labels"}


def _toy_space(channels: int, size: int) -> FeatureNet:
    torch.manual_seed(0)
    return FeatureNet(build_feature_net("lenet", channels, size, 4, 8).eval(), "toy-lenet8", "toy")


def test_score_battery_scores_every_set_and_refuses_another_reference():
    real = _real(n=20, n_test=60)
    net = _toy_space(1, 28)
    reference = compute_reference(net, real.test[:20], device=CPU)
    scores = score_battery(net, reference, real.train, real.test, real.test_labels, n=20, seed=0, nearest_k=3,
                           device=CPU)  # fmt: skip
    assert list(scores) == list(BATTERY)
    for metrics in scores.values():
        assert set(metrics) == {"fid", "precision", "recall", "density", "coverage"}
    assert scores["one_image"]["recall"] == 0.0
    with pytest.raises(ValueError, match="must be the first 20 test images"):
        score_battery(net, compute_reference(net, real.test[1:21], device=CPU), real.train, real.test,
                      real.test_labels, n=20, seed=0, nearest_k=3, device=CPU)  # fmt: skip


def test_battery_record_caps_n_at_half_the_test_split_for_colour_data():
    real = _real(32, 3, n=20, n_test=40, labelled=False)
    record = battery_record(_toy_space(3, 32), real.train, real.test, real.test_labels, n=2000, seed=0, nearest_k=3,
                            device=CPU)  # fmt: skip
    assert record["battery_protocol"]["n"] == 20
    assert set(record["battery"]) == set(BATTERY) - {"half_classes"}
    assert record["battery_protocol"]["skipped"] == {"half_classes": "the dataset has no labels"}
    assert "half_classes_coverage_0.4_to_0.65_of_real_train" not in record["battery_checks"]


# ----------------------------------------------------------------------------------------------------
# The MNIST domain space of params.yaml, trained at a small budget: the orderings the battery must show


@pytest.mark.slow
@pytest.mark.skipif(not MNIST.exists(), reason="needs data/prepared/mnist.npz (dvc repro prepare@mnist)")
def test_battery_orderings_in_the_mnist_domain_space(params, tmp_path):
    from ganlab.config import FeatureNetConfig, parse
    from ganlab.data.arrays import load_prepared
    from ganlab.features import load_feature_net, save_feature_net, train_feature_net

    data = load_prepared(MNIST)
    cfg = parse(FeatureNetConfig, params["features"]["mnist"], section="features.mnist")
    model, info = train_feature_net(cfg, data, num_epochs=1, device=CPU, max_batches_per_epoch=BUDGET_BATCHES)
    save_feature_net(model, tmp_path / "network.pt", dataset="mnist", cfg=cfg, info=info)
    net = load_feature_net(tmp_path / "network.pt", CPU)
    scores = battery_record(net, data["x_train"], data["x_test"], data["y_test"], n=1000, seed=0, nearest_k=5,
                            device=CPU)["battery"]  # fmt: skip
    real = scores.pop("real_train")
    for name, metrics in scores.items():  # the real-vs-real baseline is the best set on both
        assert metrics["recall"] < real["recall"] and metrics["fid"] > real["fid"], name
    for name in (s for s in scores if BATTERY[s].kind == "noise"):
        assert scores[name]["precision"] < real["precision"], name
    assert 0.3 < scores["half_classes"]["coverage"] / real["coverage"] < 0.8
