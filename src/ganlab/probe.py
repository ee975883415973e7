"""Linear-probe evaluation of a BiGAN encoder (Donahue et al. 2017; report 002): how much class information the
learned code E(x) carries.

Protocol: E in eval mode embeds a seeded subset of `train_size` train images and the whole test split; an RBF
SVM (scikit-learn `SVC`, C = `svm_c`, gamma "scale") and a multinomial logistic regression (the "linear
classifier") are fitted on standardised codes (z-scored with the train subset's mean and std); optionally a
1-nearest-neighbour classifier on the raw codes (Euclidean; the BiGAN paper's MNIST metric, official `NNC_e`).
Returned accuracies are fractions in [0, 1] on the test split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from torch import nn

from ganlab.data.arrays import to_model


@torch.no_grad()
def encode(encoder: nn.Module, images: np.ndarray, *, batch_size: int, device: torch.device) -> np.ndarray:
    """uint8 (N, H, W, C) -> float64 (N, nz) codes E(x), encoder in eval mode (BatchNorm running statistics)."""
    encoder.eval()
    out = [encoder(to_model(images[i : i + batch_size]).to(device)).double().cpu().numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out)


def probe_codes(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray, test_labels: np.ndarray,
                *, svm_c: float = 1.0, nearest_neighbour: bool = True) -> dict[str, float]:
    """Test accuracies of the SVM, the linear classifier and (optionally) 1-NN fitted on the train codes."""
    classifiers: dict[str, Any] = {
        "svm_rbf_accuracy": make_pipeline(StandardScaler(), SVC(C=svm_c, kernel="rbf", gamma="scale")),
        "linear_accuracy": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    }
    if nearest_neighbour:
        classifiers["nn1_accuracy"] = KNeighborsClassifier(n_neighbors=1)
    return {name: float((clf.fit(train_codes, train_labels).predict(test_codes) == test_labels).mean())
            for name, clf in classifiers.items()}


def train_subset(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset of `size` out of n (all of them when size >= n)."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
