"""The domain feature network: a small LeNet-style CNN classifier whose penultimate layer is the feature
space for FID and PRDC on datasets without Inception weights (catalogue §E; cf. "Fréchet LeNet Distance").

Numbers are comparable only within one fixed, versioned network: every metric file records the sha256 of
its weights.
"""

from __future__ import annotations

import torch
from torch import nn


class LeNetClassifier(nn.Module):
    """(B, C, H, W) in [-1, 1] -> logits (B, num_classes); `features` gives the (B, feature_dim) embedding."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, feature_dim: int = 128):
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        self.num_classes, self.feature_dim = num_classes, feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, H/2, W/2)
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 64, H/4, W/4)
            nn.Flatten(),
            # the feature space: the penultimate layer *before* its ReLU. After the ReLU, units that never
            # fire leave the covariance singular (about half of 128 units were dead in a quick run).
            nn.Linear(64 * (image_size // 4) ** 2, feature_dim),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
