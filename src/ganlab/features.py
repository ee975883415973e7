"""The feature spaces: train the per-dataset domain network, embed images, cache reference statistics.

Two kinds of domain network (`ganlab.nets.classifier.FEATURE_ARCHS`, chosen by `features.<dataset>.arch`):
a classifier where the dataset has labels (MNIST, CIFAR-10, AFHQ; quality = test accuracy) and an
autoencoder where it has none (QuickDraw sheep; quality = test reconstruction MSE). The Inception-v3 pool3
space (`ganlab.inception`, its `InceptionSpace`) is the second, dataset-independent feature space, with the
same interface (`name`, `weights_sha256`, `embed`) so that references and scores treat both alike.

A classifier may have one more class, "none of these" (`features.<dataset>.reject_class`): trained on synthetic
`NEGATIVES`, it gives images that are no member of the dataset a region of the feature space of their own. Without
it, noise lands between the real clusters, inside the k-NN balls of a few real outliers: in the MNIST LeNet space,
salt-and-pepper and grey noise score precision 1.00, uniform noise 0.54; with it, 0.00 (`ganlab.battery`, issue 15).

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
    `cfg.seed` (init, dropout, shuffling and negatives) on a deterministic device.

    With `cfg.reject_class`, every batch also holds round(batch_size * fraction) synthetic negatives labelled K
    (one class past the dataset's K); a test image classified so counts as wrong in test_accuracy, and info adds
    "test_rejected", the fraction of test images classified so."""
    if FEATURE_ARCHS[cfg.arch].kind != "classifier":
        raise ValueError(f"arch {cfg.arch!r} is not a classifier")
    num_classes = int(y_train.max()) + 1
    if num_classes < 2:
        raise ValueError("the domain classifier needs a labelled dataset (at least two classes)")
    reject = cfg.reject_class
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    negatives_gen = torch.Generator(device="cpu").manual_seed(cfg.seed)  # its own stream: the batches stay the same
    num_negatives = round(cfg.batch_size * reject.fraction) if reject else 0
    torch.manual_seed(cfg.seed)  # init and dropout
    model = build_feature_net(
        cfg.arch, x_train.shape[3], x_train.shape[1], num_classes + (reject is not None), cfg.feature_dim
    ).to(device)
    total_steps = num_epochs * _steps_per_epoch(len(x_train), cfg, max_batches_per_epoch)
    opt, schedule = _adam(model, cfg, total_steps)
    data, labels = torch.as_tensor(x_train).to(device), torch.as_tensor(y_train).long().to(device)
    loss = torch.tensor(float("nan"))
    with Progress(progress or "", total_steps, enabled=progress is not None) as bar:
        for _ in range(num_epochs):
            model.train()
            for idx in _minibatches(len(data), cfg, gen, max_batches_per_epoch):
                idx = idx.to(device)
                x, y = to_model(data[idx]), labels[idx]
                if num_negatives:  # (B + m, C, H, W): the batch, then m negatives of class K
                    negatives = NEGATIVES[reject.negatives](num_negatives, x.shape[1], x.shape[2], gen=negatives_gen)
                    x = torch.cat([x, negatives.to(device)])
                    y = torch.cat([y, torch.full((num_negatives,), num_classes, device=device)])
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                schedule.step()
                bar.update()
    model.eval()
    predictions = predict(model, x_test, device=device)
    info = {"test_accuracy": float((predictions == y_test).mean())}
    if reject:
        info["test_rejected"] = float((predictions == num_classes).mean())
    return model, info | {"train_loss": float(loss.detach()), "num_epochs": num_epochs}


# ----------------------------------------------------------------------------------------------------
# Negatives of the reject class: (count, channels, size, *, gen) -> float32 (count, C, size, size) in [-1, 1]


def smooth_fields(count: int, channels: int, size: int, *, gen: torch.Generator) -> torch.Tensor:
    """Uniform noise on a coarse g x g grid (g = 2 .. size // 4, equal shares; 2 .. 7 at 28 px), bilinearly
    upsampled to `size` px and stretched per image to a random grey range [lo, hi] within [0, 1]; half of them
    keep only their brightest 20 % (bright blobs on black), the rest are grey fields. Smooth and spatially
    correlated by construction, so they share nothing with the battery's i.i.d. pixel noise, salt-and-pepper,
    shuffled or inverted images: the battery measures how the reject class generalises, not what it was shown."""
    grids = range(2, max(2, size // 4) + 1)
    fields = []
    for g, share in zip(grids, np.array_split(np.arange(count), len(grids))):
        m = len(share)
        if m == 0:
            continue
        coarse = torch.rand(m, channels, g, g, generator=gen)
        field = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)  # (m, C, size, size)
        low, high = field.amin((1, 2, 3), keepdim=True), field.amax((1, 2, 3), keepdim=True)
        lo = torch.rand(m, 1, 1, 1, generator=gen) * 0.5
        hi = lo + torch.rand(m, 1, 1, 1, generator=gen) * (1 - lo)
        field = lo + (hi - lo) * (field - low) / (high - low + 1e-6)
        blobs = torch.rand(m, 1, 1, 1, generator=gen) < 0.5
        threshold = torch.quantile(field.flatten(1), 0.8, dim=1).view(-1, 1, 1, 1)
        field = torch.where(blobs & (field <= threshold), torch.zeros_like(field), field)
        fields.append(field * 2 - 1)  # [0, 1] -> the model's [-1, 1]
    return torch.cat(fields)


# The negatives a reject class can be trained on (`features.<dataset>.reject_class.negatives`).
NEGATIVES = {"smooth_fields": smooth_fields}


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


def label_accuracy(net: FeatureNet, images: np.ndarray, labels: np.ndarray, *, device: torch.device) -> float:
    """Fraction of uint8 (N, H, W, C) images that the domain classifier `net` assigns to their label, int (N,):
    how often a conditional generator's G(z, y) is recognisably of class y (report 001, claim D1)."""
    if net.kind != "classifier":
        raise ValueError(f"label accuracy needs a classifier feature network; {net.name} is of kind {net.kind!r}")
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"labels of shape {labels.shape} for {len(images)} images; expected one label per image")
    num_classes = net.model.num_classes
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels span [{labels.min()}, {labels.max()}]; {net.name} has classes 0..{num_classes - 1}")
    return float((predict(net.model, images, device=device) == labels).mean())


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
            "reject_class": cfg.reject_class.model_dump() if cfg.reject_class else None,
            "weights_sha256": weights_sha256,
            "info": info,
        },
        path,
    )
    return weights_sha256


def load_feature_net(path: Path, device: torch.device) -> FeatureNet:
    """Rebuild a network written by `save_feature_net` (checkpoints from before `kind` existed are LeNets),
    refusing it if its weights no longer match the recorded hash. Its name: <dataset>-<arch><feature_dim>, and
    "-reject" when it has a reject class (mnist-lenet128-reject)."""
    state = ckpt_io.load(path, map_location="cpu")
    model = build_feature_net(
        state["arch"], state["in_channels"], state["image_size"], state["num_classes"], state["feature_dim"]
    )
    model.load_state_dict(state["state_dict"])
    weights_sha256 = ckpt_io.state_dict_sha256(state["state_dict"])
    if weights_sha256 != state["weights_sha256"]:
        raise ValueError(f"{path}: weights hash {weights_sha256} does not match the recorded {state['weights_sha256']}")
    name = f"{state['dataset']}-{state['arch']}{state['feature_dim']}{'-reject' if state.get('reject_class') else ''}"
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
