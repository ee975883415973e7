"""The feature spaces: train the per-dataset domain network, embed images, cache reference statistics.

Two kinds of domain network (`ganlab.nets.classifier.FEATURE_ARCHS`, chosen by `features.<dataset>.arch`):
a classifier where the dataset has labels (MNIST, CIFAR-10, AFHQ; quality = test accuracy) and an
autoencoder where it has none (QuickDraw sheep; quality = test reconstruction MSE). The Inception-v3 pool3
space (`ganlab.inception`) is the second, dataset-independent feature space; `InceptionSpace` gives it the
same interface (`name`, `weights_sha256`, `embed`) so that references and scores treat both alike.

Reference statistics (real test-set features, their mean and float64 covariance) are keyed by content:
sha256 of the test images + sha256 of the feature network's weights + N. A consumer checks the key before
reusing them, so statistics never silently outlive the data or the network they were computed from.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganlab import checkpoint as ckpt_io
from ganlab.config import FeatureNetConfig
from ganlab.data.arrays import to_model
from ganlab.inception import FEATURE_SPACE as INCEPTION_FEATURE_SPACE
from ganlab.inception import (
    FID_WEIGHTS_SHA256_PREFIX,
    FIDInceptionPool3,
    InceptionWeights,
    embed_inception,
    load_inception,
    weights_from_record,
)
from ganlab.metrics import feature_statistics
from ganlab.nets.classifier import FEATURE_ARCHS, build_feature_net
from ganlab.progress import Progress


class FeatureSpace(Protocol):
    """What references and scores need from a feature space."""

    name: str  # e.g. "mnist-lenet128": the feature space's name in every metrics file
    weights_sha256: str

    def embed(self, images: np.ndarray, *, device: torch.device) -> np.ndarray: ...


@dataclass(frozen=True)
class FeatureNet:
    """A trained domain network (eval mode) with its feature space's name and weights hash."""

    model: nn.Module  # has .features(x): (B, C, H, W) in [-1, 1] -> (B, feature_dim)
    name: str
    weights_sha256: str
    kind: str = "classifier"  # or "autoencoder"

    def embed(self, images: np.ndarray, *, device: torch.device) -> np.ndarray:
        return embed(self, images, device=device)


@dataclass(frozen=True)
class InceptionSpace:
    """Inception-v3 pool3 (2048-D) with verified weights; `weights_sha256` is the weights *file's* sha256."""

    model: FIDInceptionPool3
    weights: InceptionWeights
    batch_size: int = 50
    name: str = INCEPTION_FEATURE_SPACE

    @property
    def weights_sha256(self) -> str:
        return self.weights.sha256

    def embed(self, images: np.ndarray, *, device: torch.device) -> np.ndarray:
        return embed_inception(self.model, images, device=device, batch_size=self.batch_size)


def load_inception_space(
    record: dict, *, device: torch.device, sha256_prefix: str = FID_WEIGHTS_SHA256_PREFIX
) -> InceptionSpace:
    """The Inception space from a `ganlab.inception.weights_record` (the fetch_inception stage's output),
    its file re-verified. Raises `ganlab.inception.InceptionUnavailable` with the reason."""
    weights = weights_from_record(record, sha256_prefix=sha256_prefix)
    return InceptionSpace(load_inception(weights, device), weights)


def array_sha256(array: np.ndarray) -> str:
    digest = hashlib.sha256(f"{array.dtype}|{array.shape}|".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------------
# Training


def train_feature_net(
    cfg: FeatureNetConfig,
    data: dict[str, np.ndarray],
    *,
    num_epochs: int,
    device: torch.device,
    max_batches_per_epoch: int | None = None,
    progress: str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the network `cfg.arch` on a prepared dataset (`ganlab.data.arrays.load_prepared`), by its kind:
    `train_classifier` (needs labels) or `train_autoencoder`. Returns (model in eval mode, info). `progress`: a
    label to show the steps under (`ganlab.progress`), None for none."""
    kind = FEATURE_ARCHS[cfg.arch].kind
    if kind == "autoencoder":
        return train_autoencoder(
            cfg, data["x_train"], data["x_test"],
            num_epochs=num_epochs, device=device, max_batches_per_epoch=max_batches_per_epoch, progress=progress,
        )
    if data["y_train"].min() < 0:
        raise ValueError(
            f"arch {cfg.arch!r} is a classifier and this dataset has no labels; use arch: autoencoder"
        )
    return train_classifier(
        cfg, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
        num_epochs=num_epochs, device=device, max_batches_per_epoch=max_batches_per_epoch, progress=progress,
    )


def _steps_per_epoch(n: int, cfg: FeatureNetConfig, max_batches: int | None) -> int:
    steps = n // cfg.batch_size
    return steps if max_batches is None else min(steps, max_batches)


def _minibatches(n: int, cfg: FeatureNetConfig, gen: torch.Generator, max_batches: int | None):
    """Index tensors of one shuffled epoch (drop_last); at most `max_batches` of them."""
    perm = torch.randperm(n, generator=gen)
    return [perm[s * cfg.batch_size : (s + 1) * cfg.batch_size] for s in range(_steps_per_epoch(n, cfg, max_batches))]


def _adam(model: nn.Module, cfg: FeatureNetConfig, total_steps: int):
    """Adam at `cfg.lr` and its per-step schedule: constant, or cosine from lr down to 0 over the run's
    `total_steps` (`lr_schedule: cosine`; LeNet on MNIST, 10 epochs: test accuracy 0.9892 constant, 0.9935
    cosine)."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True)
    if cfg.lr_schedule == "cosine":
        factor = lambda step: 0.5 * (1 + math.cos(math.pi * step / max(total_steps, 1)))  # noqa: E731
    else:
        factor = lambda step: 1.0  # noqa: E731
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_classifier(
    cfg: FeatureNetConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    num_epochs: int,
    device: torch.device,
    max_batches_per_epoch: int | None = None,
    progress: str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Fit the classifier `cfg.arch` with Adam (`cfg.lr_schedule`) + cross-entropy on uint8 (N, H, W, C)
    images; returns it (eval mode) and {"test_accuracy", "train_loss", "num_epochs"}. Deterministic given
    `cfg.seed` (init, dropout and shuffling) on a deterministic device."""
    if FEATURE_ARCHS[cfg.arch].kind != "classifier":
        raise ValueError(f"arch {cfg.arch!r} is not a classifier")
    num_classes = int(y_train.max()) + 1
    if num_classes < 2:
        raise ValueError("the domain classifier needs a labelled dataset (at least two classes)")
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # init and dropout
    model = build_feature_net(cfg.arch, x_train.shape[3], x_train.shape[1], num_classes, cfg.feature_dim).to(device)
    total_steps = num_epochs * _steps_per_epoch(len(x_train), cfg, max_batches_per_epoch)
    opt, schedule = _adam(model, cfg, total_steps)
    data, labels = torch.as_tensor(x_train).to(device), torch.as_tensor(y_train).long().to(device)
    loss = torch.tensor(float("nan"))
    with Progress(progress or "", total_steps, enabled=progress is not None) as bar:
        for _ in range(num_epochs):
            model.train()
            for idx in _minibatches(len(data), cfg, gen, max_batches_per_epoch):
                idx = idx.to(device)
                loss = F.cross_entropy(model(to_model(data[idx])), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                schedule.step()
                bar.update()
    model.eval()
    predictions = predict(model, x_test, device=device)
    accuracy = float((predictions == y_test).mean())
    return model, {"test_accuracy": accuracy, "train_loss": float(loss.detach()), "num_epochs": num_epochs}


def train_autoencoder(
    cfg: FeatureNetConfig,
    x_train: np.ndarray,
    x_test: np.ndarray,
    *,
    num_epochs: int,
    device: torch.device,
    max_batches_per_epoch: int | None = None,
    progress: str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Fit the autoencoder `cfg.arch` with Adam (`cfg.lr_schedule`) + pixel MSE (in the model's [-1, 1]
    scale) on uint8 (N, H, W, C) images; returns it (eval mode) and {"test_reconstruction_mse", "train_loss",
    "num_epochs"}. No labels are used."""
    if FEATURE_ARCHS[cfg.arch].kind != "autoencoder":
        raise ValueError(f"arch {cfg.arch!r} is not an autoencoder")
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = build_feature_net(cfg.arch, x_train.shape[3], x_train.shape[1], 0, cfg.feature_dim).to(device)
    total_steps = num_epochs * _steps_per_epoch(len(x_train), cfg, max_batches_per_epoch)
    opt, schedule = _adam(model, cfg, total_steps)
    data = torch.as_tensor(x_train).to(device)
    loss = torch.tensor(float("nan"))
    with Progress(progress or "", total_steps, enabled=progress is not None) as bar:
        for _ in range(num_epochs):
            model.train()
            for idx in _minibatches(len(data), cfg, gen, max_batches_per_epoch):
                x = to_model(data[idx.to(device)])
                loss = F.mse_loss(model(x), x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                schedule.step()
                bar.update()
    model.eval()
    mse = reconstruction_mse(model, x_test, device=device)
    return model, {"test_reconstruction_mse": mse, "train_loss": float(loss.detach()), "num_epochs": num_epochs}


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, *, device: torch.device, batch_size: int = 1000) -> np.ndarray:
    """Class indices (N,) int64 of uint8 (N, H, W, C) images."""
    out = [
        model(to_model(images[i : i + batch_size]).to(device)).argmax(1).cpu().numpy()
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out)


@torch.no_grad()
def reconstruction_mse(model: nn.Module, images: np.ndarray, *, device: torch.device, batch_size: int = 1000) -> float:
    """Mean squared error per pixel between uint8 images and their reconstructions, in the [-1, 1] scale."""
    total, count = 0.0, 0
    for i in range(0, len(images), batch_size):
        x = to_model(images[i : i + batch_size]).to(device)
        total += float(F.mse_loss(model(x), x, reduction="sum"))
        count += x.numel()
    return total / count


@torch.no_grad()
def embed(net: FeatureNet, images: np.ndarray, *, device: torch.device, batch_size: int = 1000) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 (N, feature_dim) features (pre-ReLU penultimate layer / bottleneck)."""
    net.model.eval()
    out = [
        net.model.features(to_model(images[i : i + batch_size]).to(device)).cpu().numpy()
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# Checkpoint of a domain network


def save_feature_net(model: nn.Module, path: Path, *, dataset: str, cfg: FeatureNetConfig, info: dict) -> str:
    """Write the network with everything needed to rebuild it; returns its weights' sha256."""
    state_dict = {k: v.cpu() for k, v in model.state_dict().items()}
    weights_sha256 = ckpt_io.state_dict_sha256(state_dict)
    ckpt_io.save_atomic(
        {
            "state_dict": state_dict,
            "dataset": dataset,
            "arch": cfg.arch,
            "kind": FEATURE_ARCHS[cfg.arch].kind,
            "in_channels": model.in_channels,
            "image_size": model.image_size,
            "num_classes": model.num_classes,
            "feature_dim": model.feature_dim,
            "weights_sha256": weights_sha256,
            "info": info,
        },
        path,
    )
    return weights_sha256


def load_feature_net(path: Path, device: torch.device) -> FeatureNet:
    """Rebuild a network written by `save_feature_net` (checkpoints from before `kind` existed are LeNets),
    refusing it if its weights no longer match the recorded hash."""
    state = ckpt_io.load(path, map_location="cpu")
    model = build_feature_net(
        state["arch"], state["in_channels"], state["image_size"], state["num_classes"], state["feature_dim"]
    )
    model.load_state_dict(state["state_dict"])
    weights_sha256 = ckpt_io.state_dict_sha256(state["state_dict"])
    if weights_sha256 != state["weights_sha256"]:
        raise ValueError(f"{path}: weights hash {weights_sha256} does not match the recorded {state['weights_sha256']}")
    name = f"{state['dataset']}-{state['arch']}{state['feature_dim']}"
    return FeatureNet(model.to(device).eval(), name, weights_sha256, FEATURE_ARCHS[state["arch"]].kind)


# ----------------------------------------------------------------------------------------------------
# Reference statistics keyed by content


def reference_key(images: np.ndarray, space: FeatureSpace) -> str:
    return hashlib.sha256(f"{array_sha256(images)}|{space.weights_sha256}|{len(images)}".encode()).hexdigest()[:16]


def compute_reference(space: FeatureSpace, images: np.ndarray, *, device: torch.device) -> dict[str, np.ndarray]:
    """Real-image features and statistics (float64), with the content key they are valid for."""
    features = space.embed(images, device=device)
    mu, sigma = feature_statistics(features)
    return {
        "features": features,
        "mu": mu,
        "sigma": sigma,
        "key": np.array(reference_key(images, space)),
        "feature_space": np.array(space.name),
        "weights_sha256": np.array(space.weights_sha256),
        "n": np.array(len(images)),
    }


def load_reference(path: Path, space: FeatureSpace, images: np.ndarray) -> dict[str, np.ndarray]:
    """Load cached reference statistics, refusing them if they were made from other data or weights."""
    with np.load(path, allow_pickle=False) as f:
        ref = {k: f[k] for k in f.files}
    if "key" not in ref:
        raise ValueError(f"{path}: not a reference statistics file (no key)")
    expected = reference_key(images, space)
    if str(ref["key"]) != expected:
        raise ValueError(f"{path}: reference statistics key {ref['key']} does not match the data/network ({expected})")
    return ref
