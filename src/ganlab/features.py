"""The domain feature space: train the per-dataset classifier, embed images, cache reference statistics.

Reference statistics (real test-set features, their mean and float64 covariance) are keyed by content:
sha256 of the test images + sha256 of the feature network's weights + N. A consumer checks the key before
reusing them, so statistics never silently outlive the data or the network they were computed from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganlab import checkpoint as ckpt_io
from ganlab.config import FeatureNetConfig
from ganlab.data.arrays import to_model
from ganlab.metrics import feature_statistics
from ganlab.nets.classifier import LeNetClassifier


@dataclass(frozen=True)
class FeatureNet:
    model: LeNetClassifier
    name: str  # e.g. "mnist-lenet128": the feature space's name in every metrics file
    weights_sha256: str


def array_sha256(array: np.ndarray) -> str:
    digest = hashlib.sha256(f"{array.dtype}|{array.shape}|".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


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
) -> tuple[LeNetClassifier, dict[str, Any]]:
    """Fit the classifier with Adam + cross-entropy on uint8 (N, H, W, C) images; returns it (eval mode)
    and {"test_accuracy", "train_loss", "num_epochs"}."""
    num_classes = int(y_train.max()) + 1
    if num_classes < 2:
        raise ValueError("the domain feature network needs a labelled dataset (at least two classes)")
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # init and dropout
    model = LeNetClassifier(x_train.shape[3], x_train.shape[1], num_classes, cfg.feature_dim).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True)
    data, labels = torch.as_tensor(x_train).to(device), torch.as_tensor(y_train).long().to(device)
    steps = len(data) // cfg.batch_size
    if max_batches_per_epoch is not None:
        steps = min(steps, max_batches_per_epoch)
    loss = torch.tensor(float("nan"))
    for _ in range(num_epochs):
        model.train()
        perm = torch.randperm(len(data), generator=gen).to(device)
        for step in range(steps):
            idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            loss = F.cross_entropy(model(to_model(data[idx])), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    predictions = predict(model, x_test, device=device)
    accuracy = float((predictions == y_test).mean())
    return model, {"test_accuracy": accuracy, "train_loss": float(loss), "num_epochs": num_epochs}


@torch.no_grad()
def predict(model: LeNetClassifier, images: np.ndarray, *, device: torch.device, batch_size: int = 1000) -> np.ndarray:
    out = [
        model(to_model(images[i : i + batch_size]).to(device)).argmax(1).cpu().numpy()
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out)


@torch.no_grad()
def embed(net: FeatureNet, images: np.ndarray, *, device: torch.device, batch_size: int = 1000) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 (N, feature_dim) penultimate-layer (pre-ReLU) features."""
    net.model.eval()
    out = [
        net.model.features(to_model(images[i : i + batch_size]).to(device)).cpu().numpy()
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out).astype(np.float32)


def save_feature_net(model: LeNetClassifier, path: Path, *, dataset: str, cfg: FeatureNetConfig, info: dict) -> str:
    """Write the network with everything needed to rebuild it; returns its weights' sha256."""
    state_dict = {k: v.cpu() for k, v in model.state_dict().items()}
    weights_sha256 = ckpt_io.state_dict_sha256(state_dict)
    ckpt_io.save_atomic(
        {
            "state_dict": state_dict,
            "dataset": dataset,
            "arch": cfg.arch,
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
    state = ckpt_io.load(path, map_location="cpu")
    model = LeNetClassifier(state["in_channels"], state["image_size"], state["num_classes"], state["feature_dim"])
    model.load_state_dict(state["state_dict"])
    weights_sha256 = ckpt_io.state_dict_sha256(state["state_dict"])
    if weights_sha256 != state["weights_sha256"]:
        raise ValueError(f"{path}: weights hash {weights_sha256} does not match the recorded {state['weights_sha256']}")
    name = f"{state['dataset']}-{state['arch']}{state['feature_dim']}"
    return FeatureNet(model.to(device).eval(), name, weights_sha256)


def reference_key(images: np.ndarray, net: FeatureNet) -> str:
    return hashlib.sha256(f"{array_sha256(images)}|{net.weights_sha256}|{len(images)}".encode()).hexdigest()[:16]


def compute_reference(net: FeatureNet, images: np.ndarray, *, device: torch.device) -> dict[str, np.ndarray]:
    """Real-image features and statistics (float64), with the content key they are valid for."""
    features = embed(net, images, device=device)
    mu, sigma = feature_statistics(features)
    return {
        "features": features,
        "mu": mu,
        "sigma": sigma,
        "key": np.array(reference_key(images, net)),
        "feature_space": np.array(net.name),
        "weights_sha256": np.array(net.weights_sha256),
        "n": np.array(len(images)),
    }


def load_reference(path: Path, net: FeatureNet, images: np.ndarray) -> dict[str, np.ndarray]:
    """Load cached reference statistics, refusing them if they were made from other data or weights."""
    with np.load(path, allow_pickle=False) as f:
        ref = {k: f[k] for k in f.files}
    expected = reference_key(images, net)
    if str(ref["key"]) != expected:
        raise ValueError(f"{path}: reference statistics key {ref['key']} does not match the data/network ({expected})")
    return ref
