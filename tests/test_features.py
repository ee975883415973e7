"""Domain feature networks (`ganlab.features`, `ganlab.nets.classifier`) on tiny synthetic datasets in the
prepared npz format (and, marked `paper`, the MNIST recipe on real MNIST), content-keyed reference statistics,
and the Inception space's record handling."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch
from torch import nn

from ganlab import checkpoint as ckpt_io
from ganlab.config import FeatureNetConfig, RejectClassConfig, parse
from ganlab.data.arrays import load_prepared
from ganlab.data.common import write_npz
from ganlab.evaluation import unavailable_inception_scores
from ganlab.scoring import METRICS, score
from ganlab.features import (
    FeatureNet,
    _adam,
    compute_reference,
    embed,
    label_accuracy,
    load_feature_net,
    NEGATIVES,
    load_reference,
    predict,
    save_feature_net,
    smooth_fields,
    train_feature_net,
)
from ganlab.inception import FIDInceptionPool3, InceptionUnavailable, load_inception_space, weights_record
from ganlab.nets.classifier import FEATURE_ARCHS, ConvClassifier, LeNetClassifier, build_feature_net

CPU = torch.device("cpu")


def _cfg(**overrides) -> FeatureNetConfig:
    section = {"arch": "lenet", "feature_dim": 32, "batch_size": 16, "lr": 2.0e-3}
    section["num_epochs"] = {"quick": 1, "paper": 1}
    return parse(FeatureNetConfig, section | overrides, section="features.test")


def _synthetic(n: int, size: int, channels: int, *, labelled: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images of 3 classes: dim noise plus a bright block in a class-specific corner (learnable by any of
    the networks); labels -1 when unlabelled."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 60, (n, size, size, channels), dtype=np.uint8)
    half = size // 2
    for i, k in enumerate(y):
        r, c = [(0, 0), (0, half), (half, 0)][k]
        x[i, r : r + half, c : c + half] = rng.integers(180, 256, (half, half, channels), dtype=np.uint8)
    return x, (y if labelled else np.full(n, -1)).astype(np.int64)


def _dataset(tmp_path, size: int, channels: int, *, labelled: bool = True, n_train: int = 96, n_test: int = 48):
    """Write and reload a prepared npz (the format every stage reads)."""
    x_train, y_train = _synthetic(n_train, size, channels, labelled=labelled, seed=1)
    x_test, y_test = _synthetic(n_test, size, channels, labelled=labelled, seed=2)
    names = np.array(["a", "b", "c"] if labelled else [], dtype=str)
    path = tmp_path / "prepared.npz"
    write_npz(path, {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, "class_names": names})
    return load_prepared(path)


# ----------------------------------------------------------------------------------------------------
# Architectures


@pytest.mark.parametrize(
    ("arch", "size", "channels", "num_classes"),
    [("lenet", 28, 1, 10), ("cnn", 32, 3, 10), ("cnn", 64, 3, 3), ("autoencoder", 28, 1, 0)],
)
def test_architectures_map_shapes(arch, size, channels, num_classes):
    net = build_feature_net(arch, channels, size, num_classes, 24).eval()
    x = torch.rand(5, channels, size, size) * 2 - 1
    assert net.features(x).shape == (5, 24)
    expected = (5, channels, size, size) if FEATURE_ARCHS[arch].kind == "autoencoder" else (5, num_classes)
    out = net(x)
    assert out.shape == expected
    if arch == "autoencoder":
        assert out.min() >= -1 and out.max() <= 1  # tanh: the pixel convention's range


def test_cnn_is_deeper_for_64_px_than_for_32_px():
    def widths(size: int) -> list[int]:
        return [m.out_channels for m in ConvClassifier(3, size, 10).modules() if isinstance(m, nn.Conv2d)]

    assert widths(32) == [32, 32, 64, 64, 128, 128]
    assert widths(64) == [16, 16, 32, 32, 64, 64, 128, 128]


def test_feature_layer_is_before_the_relu():
    # negative features exist: the embedding is not a ReLU output (dead units made covariances singular)
    torch.manual_seed(0)
    for net in (LeNetClassifier(1, 28, 10), ConvClassifier(3, 32, 10)):
        assert (net.eval().features(torch.rand(16, net.in_channels, net.image_size, net.image_size)) < 0).any()


def test_lenet_parameters_are_unchanged_so_old_checkpoints_load():
    shapes = {k: tuple(v.shape) for k, v in LeNetClassifier(1, 28, 10, 128).state_dict().items()}
    assert shapes == {
        "body.0.weight": (32, 1, 3, 3), "body.0.bias": (32,),
        "body.3.weight": (64, 32, 3, 3), "body.3.bias": (64,),
        "body.7.weight": (128, 3136), "body.7.bias": (128,),
        "head.2.weight": (10, 128), "head.2.bias": (10,),
    }  # fmt: skip


def test_checkpoint_in_the_earlier_format_still_loads(tmp_path):
    torch.manual_seed(0)
    model = LeNetClassifier(1, 28, 10, 128)
    state_dict = model.state_dict()
    old = {  # exactly the keys save_feature_net wrote before `kind` existed
        "state_dict": state_dict, "dataset": "mnist", "arch": "lenet", "in_channels": 1, "image_size": 28,
        "num_classes": 10, "feature_dim": 128, "weights_sha256": ckpt_io.state_dict_sha256(state_dict), "info": {},
    }  # fmt: skip
    ckpt_io.save_atomic(old, tmp_path / "network.pt")
    net = load_feature_net(tmp_path / "network.pt", CPU)
    assert net.name == "mnist-lenet128" and net.kind == "classifier"
    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    with torch.no_grad():
        direct = model.eval().features(torch.as_tensor(x).permute(0, 3, 1, 2) / 127.5 - 1).numpy()
    np.testing.assert_array_equal(embed(net, x, device=CPU), direct)


# ----------------------------------------------------------------------------------------------------
# Training and embedding


@pytest.mark.parametrize(("arch", "size", "channels"), [("lenet", 28, 1), ("cnn", 32, 3), ("cnn", 64, 3)])
def test_classifier_trains_embeds_and_round_trips(tmp_path, arch, size, channels):
    data = _dataset(tmp_path, size, channels, n_train=48)
    cfg = _cfg(arch=arch)
    model, info = train_feature_net(cfg, data, num_epochs=6, device=CPU)
    assert info["test_accuracy"] >= 0.9, info  # chance is ~1/3
    assert set(info) == {"test_accuracy", "train_loss", "num_epochs"}

    digest = save_feature_net(model, tmp_path / "network.pt", dataset="toy", cfg=cfg, info=info)
    net = load_feature_net(tmp_path / "network.pt", CPU)
    assert net.name == f"toy-{arch}32" and net.weights_sha256 == digest and net.kind == "classifier"
    features = net.embed(data["x_test"], device=CPU)
    assert features.shape == (48, 32) and features.dtype == np.float32 and np.isfinite(features).all()
    # the reloaded network gives the trained one's features, batch size does not matter
    with torch.no_grad():
        direct = model.eval().features(torch.as_tensor(data["x_test"]).permute(0, 3, 1, 2).float() / 127.5 - 1)
    tol = 1e-5 * float(np.abs(features).max())  # float32 rounding at the features' scale
    np.testing.assert_allclose(features, direct.numpy(), rtol=0, atol=tol)
    np.testing.assert_allclose(embed(net, data["x_test"], device=CPU, batch_size=5), features, rtol=0, atol=tol)


@pytest.mark.paper
def test_mnist_network_reaches_99_percent_at_paper_scale(tmp_path):
    """The recipe of params.yaml at paper scale on real MNIST (~3 min on 2 CPU cores; measured 0.9935, and
    0.9892 with a constant learning rate). Run with `pytest -m paper`."""
    from ganlab.config import read_params
    from ganlab.data.registry import DatasetUnavailable, fetch_dataset, prepare_dataset

    root = Path(__file__).resolve().parents[1]
    try:
        fetch_dataset("mnist", tmp_path / "raw.npz", download_dir=root / "data" / "downloads",
                      manual_dir=tmp_path / "manual", checksums_path=tmp_path / "checksums.json")  # fmt: skip
    except DatasetUnavailable as exc:
        pytest.skip(f"MNIST is not available here: {exc}")
    prepare_dataset("mnist", tmp_path / "raw.npz", tmp_path / "prepared.npz")
    section = read_params(root / "params.yaml")["features"]["mnist"]
    cfg = parse(FeatureNetConfig, section, section="features.mnist")
    data = load_prepared(tmp_path / "prepared.npz")
    _, info = train_feature_net(cfg, data, num_epochs=cfg.num_epochs.at("paper"), device=CPU)
    assert info["test_accuracy"] >= 0.99, info


def test_training_is_deterministic_given_the_seed(tmp_path):
    data = _dataset(tmp_path, 32, 3, n_train=32, n_test=8)

    def weights_hash(seed: int) -> str:
        model, _ = train_feature_net(_cfg(arch="cnn", seed=seed), data, num_epochs=1, device=CPU)
        return ckpt_io.state_dict_sha256(model.state_dict())

    assert weights_hash(0) == weights_hash(0) != weights_hash(1)


def test_autoencoder_trains_without_labels_and_reports_reconstruction_mse(tmp_path):
    data = _dataset(tmp_path, 28, 1, labelled=False, n_train=64)
    assert (data["y_train"] == -1).all()
    cfg = _cfg(arch="autoencoder", lr=3.0e-3)
    _, before = train_feature_net(cfg, data, num_epochs=0, device=CPU)
    model, info = train_feature_net(cfg, data, num_epochs=12, device=CPU)
    assert set(info) == {"test_reconstruction_mse", "train_loss", "num_epochs"}
    assert info["test_reconstruction_mse"] < 0.5 * before["test_reconstruction_mse"], (before, info)
    # independent check of the reported number: MSE in [-1, 1] units recomputed by hand
    x = torch.as_tensor(data["x_test"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        assert info["test_reconstruction_mse"] == pytest.approx(float(((model(x) - x) ** 2).mean()), rel=1e-5)

    save_feature_net(model, tmp_path / "ae.pt", dataset="sheep", cfg=cfg, info=info)
    net = load_feature_net(tmp_path / "ae.pt", CPU)
    assert net.name == "sheep-autoencoder32" and net.kind == "autoencoder"
    assert net.embed(data["x_test"], device=CPU).shape == (48, 32)


def test_a_classifier_on_unlabelled_data_is_refused_with_the_fix(tmp_path):
    data = _dataset(tmp_path, 28, 1, labelled=False, n_train=16, n_test=4)
    with pytest.raises(ValueError, match="no labels; use arch: autoencoder"):
        train_feature_net(_cfg(arch="lenet"), data, num_epochs=1, device=CPU)


def test_unknown_arch_is_a_config_error_naming_the_allowed_ones():
    from ganlab.schema import ConfigError

    with pytest.raises(ConfigError, match="features.test.arch"):
        _cfg(arch="resnet")
    with pytest.raises(ValueError, match="allowed: \\['autoencoder', 'cnn', 'lenet'\\]"):
        build_feature_net("resnet", 1, 28, 10, 8)


def test_learning_rate_schedule_is_cosine_to_zero_or_constant():
    model = nn.Linear(2, 2)
    seen = {}
    for schedule in ("cosine", "constant"):
        opt, steps = _adam(model, _cfg(lr=1.0e-3, lr_schedule=schedule), total_steps=8)
        seen[schedule] = []
        for _ in range(9):
            seen[schedule].append(opt.param_groups[0]["lr"])
            opt.step()
            steps.step()
    assert seen["cosine"] == pytest.approx([1.0e-3 * 0.5 * (1 + math.cos(math.pi * t / 8)) for t in range(9)])
    assert seen["cosine"][4] == pytest.approx(5.0e-4) and seen["cosine"][8] == pytest.approx(0.0, abs=1e-15)
    assert seen["constant"] == [1.0e-3] * 9


def test_unknown_lr_schedule_is_a_config_error_naming_the_allowed_ones():
    from ganlab.schema import ConfigError

    with pytest.raises(ConfigError, match="features.test.lr_schedule.*'constant'.*'cosine'"):
        _cfg(lr_schedule="cosin")


# ----------------------------------------------------------------------------------------------------
# The reject class ("none of these") and its negatives


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3), (64, 3)])
def test_smooth_fields_are_smooth_images_in_the_model_range(size, channels):
    fields = smooth_fields(40, channels, size, gen=torch.Generator().manual_seed(0))
    assert fields.shape == (40, channels, size, size) and fields.dtype == torch.float32
    assert fields.min() >= -1 and fields.max() <= 1
    torch.testing.assert_close(smooth_fields(40, channels, size, gen=torch.Generator().manual_seed(0)), fields,
                               rtol=0, atol=0)  # fmt: skip
    # spatially correlated: neighbours differ far less than the same pixels in shuffled places
    order = torch.randperm(channels * size * size, generator=torch.Generator().manual_seed(1))
    shuffled = fields.flatten(1)[:, order].view_as(fields)
    step = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()  # noqa: E731
    assert step(fields) < step(shuffled) / 4
    # about half are bright blobs on black (80 % of the pixels black, up to the quantile's interpolation), the rest
    # grey fields (at most their one darkest pixel black)
    black = (fields == -1).flatten(1).float().mean(1)
    assert 10 <= int((black > 0.79).sum()) <= 30 and int((black > 0.79).sum()) + int((black < 0.01).sum()) == 40


def test_a_reject_class_is_one_more_class_trained_on_negatives(tmp_path):
    data = _dataset(tmp_path, 28, 1, n_train=48)
    cfg = _cfg(reject_class={"negatives": "smooth_fields", "fraction": 0.25})
    model, info = train_feature_net(cfg, data, num_epochs=6, device=CPU)
    assert model.num_classes == 4  # the toy data's 3 classes + "none of these"
    assert set(info) == {"test_accuracy", "test_rejected", "train_loss", "num_epochs"}
    assert info["test_accuracy"] >= 0.9 and info["test_rejected"] <= 0.1, info
    negatives = smooth_fields(30, 1, 28, gen=torch.Generator().manual_seed(5))  # not the training draws
    with torch.no_grad():
        assert (model(negatives).argmax(1) == 3).float().mean() >= 0.8

    save_feature_net(model, tmp_path / "network.pt", dataset="toy", cfg=cfg, info=info)
    assert ckpt_io.load(tmp_path / "network.pt")["reject_class"] == {"negatives": "smooth_fields", "fraction": 0.25}
    net = load_feature_net(tmp_path / "network.pt", CPU)
    assert net.name == "toy-lenet32-reject" and net.model.num_classes == 4


def test_a_reject_class_needs_a_classifier_and_known_negatives():
    from ganlab.schema import ConfigError

    with pytest.raises(ConfigError, match="features.test.reject_class: needs a classifier arch"):
        _cfg(arch="autoencoder", reject_class={})
    with pytest.raises(ConfigError, match="features.test.reject_class.negatives.*'smooth_fields'"):
        _cfg(reject_class={"negatives": "blobs"})
    with pytest.raises(ConfigError, match="features.test.reject_class.fraction"):
        _cfg(reject_class={"fraction": 0.0})
    # the names params.yaml may give are the negatives features.py has (config may not import features)
    assert set(NEGATIVES) == set(get_args(RejectClassConfig.model_fields["negatives"].annotation))


# ----------------------------------------------------------------------------------------------------
# Reference statistics keyed by content


@pytest.fixture
def toy_net(tmp_path):
    torch.manual_seed(0)
    model = LeNetClassifier(1, 28, 3, 16)
    save_feature_net(model, tmp_path / "net.pt", dataset="toy", cfg=_cfg(feature_dim=16), info={})
    return load_feature_net(tmp_path / "net.pt", CPU)


def test_reference_is_keyed_by_images_and_weights(tmp_path, toy_net):
    images, _ = _synthetic(40, 28, 1, labelled=True, seed=3)
    ref = compute_reference(toy_net, images, device=CPU)
    np.savez(tmp_path / "ref.npz", **ref)
    loaded = load_reference(tmp_path / "ref.npz", toy_net, images)
    np.testing.assert_array_equal(loaded["mu"], ref["mu"])
    assert loaded["sigma"].dtype == np.float64 and int(loaded["n"]) == 40
    assert str(loaded["feature_space"]) == "toy-lenet16" and str(loaded["weights_sha256"]) == toy_net.weights_sha256
    # statistics themselves against an independent numpy computation
    features = toy_net.embed(images, device=CPU).astype(np.float64)
    np.testing.assert_allclose(ref["sigma"], np.cov(features, rowvar=False), rtol=1e-6, atol=1e-9)

    one_pixel = images.copy()
    one_pixel[7, 10, 10, 0] ^= 1
    assert compute_reference(toy_net, one_pixel, device=CPU)["key"] != ref["key"]
    with pytest.raises(ValueError, match="does not match the data/network"):
        load_reference(tmp_path / "ref.npz", toy_net, one_pixel)
    with pytest.raises(ValueError, match="does not match the data/network"):
        load_reference(tmp_path / "ref.npz", toy_net, images[:39])

    torch.manual_seed(1)
    other = LeNetClassifier(1, 28, 3, 16)
    save_feature_net(other, tmp_path / "other.pt", dataset="toy", cfg=_cfg(feature_dim=16), info={})
    with pytest.raises(ValueError, match="does not match the data/network"):
        load_reference(tmp_path / "ref.npz", load_feature_net(tmp_path / "other.pt", CPU), images)


def test_unavailable_reference_file_is_refused(tmp_path, toy_net):
    np.savez(tmp_path / "inception_reference.npz", unavailable=np.array("no weights"))
    with pytest.raises(ValueError, match="not a reference statistics file"):
        load_reference(tmp_path / "inception_reference.npz", toy_net, np.zeros((1, 28, 28, 1), np.uint8))


def test_score_in_a_domain_space(toy_net):
    images, _ = _synthetic(60, 28, 1, labelled=True, seed=4)
    ref = compute_reference(toy_net, images, device=CPU)
    same = score(images, toy_net, ref, nearest_k=3, device=CPU)
    assert set(same) == set(METRICS)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    fresh, _ = _synthetic(60, 28, 1, labelled=True, seed=6)  # same distribution, other draws
    noise = np.random.default_rng(5).integers(0, 256, images.shape, dtype=np.uint8)
    fid_fresh = score(fresh, toy_net, ref, nearest_k=3, device=CPU)["fid"]
    fid_noise = score(noise, toy_net, ref, nearest_k=3, device=CPU)["fid"]
    assert 0 < fid_fresh < fid_noise / 3, (fid_fresh, fid_noise)


# ----------------------------------------------------------------------------------------------------
# Label accuracy: the domain classifier's agreement with the labels a conditional G was given


class _BrightCorner(nn.Module):
    """A classifier by construction for `_synthetic`'s 28 px images: logit k = the mean of corner k (top-left,
    top-right, bottom-left), so the predicted class is the corner holding the bright block, i.e. the true class."""

    num_classes = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 28, 28) in [-1, 1] -> (B, 3)
        corners = (x[:, :, :14, :14], x[:, :, :14, 14:], x[:, :, 14:, :14])
        return torch.stack([c.mean((1, 2, 3)) for c in corners], 1)


def test_label_accuracy_is_the_fraction_of_images_classified_as_their_label():
    images, y = _synthetic(30, 28, 1, labelled=True, seed=7)
    net = FeatureNet(_BrightCorner(), "toy-corners", "none")
    np.testing.assert_array_equal(predict(net.model, images, device=CPU), y)  # the fixture is what it claims
    assert label_accuracy(net, images, y, device=CPU) == 1.0
    assert label_accuracy(net, images, (y + 1) % 3, device=CPU) == 0.0  # every label wrong
    mixed = y.copy()
    mixed[[0, 4, 9, 13, 21, 22, 29]] = (y[[0, 4, 9, 13, 21, 22, 29]] + 2) % 3  # 7 of 30 wrong
    assert label_accuracy(net, images, mixed, device=CPU) == 23 / 30


def test_label_accuracy_refuses_an_autoencoder_and_labels_that_do_not_fit():
    images, y = _synthetic(6, 28, 1, labelled=True, seed=8)
    net = FeatureNet(_BrightCorner(), "toy-corners", "none")
    with pytest.raises(ValueError, match="needs a classifier feature network; toy-ae is of kind 'autoencoder'"):
        label_accuracy(FeatureNet(_BrightCorner(), "toy-ae", "none", kind="autoencoder"), images, y, device=CPU)
    with pytest.raises(ValueError, match="one label per image"):
        label_accuracy(net, images, y[:5], device=CPU)
    with pytest.raises(ValueError, match=r"labels span \[0, 3\]; toy-corners has classes 0..2"):
        label_accuracy(net, images, np.array([0, 1, 2, 3, 0, 1]), device=CPU)


# ----------------------------------------------------------------------------------------------------
# The Inception space's record (what fetch_inception writes)


def test_unavailable_record_gives_unavailable_strings_for_every_inception_metric():
    record = json.loads(json.dumps(weights_record(None, "offline: URLError")))
    with pytest.raises(InceptionUnavailable) as err:
        load_inception_space(record, device=CPU)
    scores = unavailable_inception_scores(err.value.reason)
    assert scores == {f"{k}_inception": "unavailable: offline: URLError" for k in METRICS}


def test_record_of_a_file_that_changed_since_is_refused(tmp_path):
    path = tmp_path / "TEST-WEIGHTS-random-init.pth"
    torch.manual_seed(0)
    torch.save(FIDInceptionPool3().inception.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    from ganlab.inception import verify_weights

    record = json.loads(json.dumps(weights_record(verify_weights(path, sha256_prefix=digest[:8]))))
    space = load_inception_space(record, device=CPU, sha256_prefix=digest[:8])
    assert space.weights_sha256 == digest and space.name.startswith("inception-v3-pool3")
    # the Inception space goes through the same reference/score path as a domain network
    real, _ = _synthetic(5, 28, 1, labelled=True, seed=7)
    with pytest.warns(UserWarning, match="singular covariance"):  # 5 samples in 2048 dims, said out loud
        ref = compute_reference(space, real, device=CPU)
    assert ref["features"].shape == (5, 2048) and str(ref["weights_sha256"]) == digest
    with pytest.warns(UserWarning, match="singular"):
        same = score(real, space, ref, nearest_k=2, device=CPU)
    assert same["precision"] == same["recall"] == 1.0
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(InceptionUnavailable):
        load_inception_space(record, device=CPU, sha256_prefix="")
