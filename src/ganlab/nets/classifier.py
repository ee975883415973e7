"""The domain feature networks: one per dataset, trained on its train split; an embedding layer of the
network is the feature space for FID and PRDC next to Inception (catalogue §E; cf. "Fréchet LeNet Distance").

    arch         kind         for                         feature space
    lenet        classifier   MNIST 28x28x1               penultimate linear layer, before its ReLU
    cnn          classifier   CIFAR-10 32x32x3, AFHQ 64   penultimate linear layer, before its ReLU
    autoencoder  autoencoder  sheep 28x28x1 (no labels)   the bottleneck (linear, no activation)

Why the layer *before* the ReLU: after it, units that never fire leave the covariance singular (about half
of 128 units were dead in a quick MNIST run). Why an autoencoder for sheep: QuickDraw bitmaps of one
category carry no labels, and the bottleneck of a network trained to reconstruct the drawings must encode
their shape (stroke layout, body/legs/head placement), which is what FID/PRDC should compare; it is cheap,
deterministic given its seed, and its quality is measurable (test reconstruction MSE). Its limit: it weighs
pixel-level reconstruction, not semantics.

Numbers are comparable only within one fixed, versioned network: every metric file records the sha256 of
its weights.
"""

from __future__ import annotations

from dataclasses import dataclass

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


class ConvClassifier(nn.Module):
    """A VGG-style CNN for small colour images: (B, C, H, W) in [-1, 1] -> logits (B, num_classes);
    `features` gives the (B, feature_dim) embedding (pre-ReLU, like LeNetClassifier).

    One stage = two conv3x3-ReLU + max-pool 2, repeated until the map is 4x4, widths doubling up to 128
    in the last stage: 32-64-128 (3 stages, 6 conv layers) for 32 px (CIFAR-10), 16-32-64-128 (4 stages,
    8 conv layers) for 64 px (AFHQ). The deeper net gives the larger image a receptive field to match at
    about the same cost per image (~40-55 M multiply-adds), so either trains in minutes per epoch on a CPU.
    No batch norm: the features of an image never depend on its batch, in training or in eval.
    """

    def __init__(self, in_channels: int, image_size: int, num_classes: int, feature_dim: int = 128):
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"cnn: image_size must be a power of two >= 8, got {image_size}")
        self.in_channels, self.image_size = in_channels, image_size
        self.num_classes, self.feature_dim = num_classes, feature_dim
        num_stages = (image_size // 4).bit_length() - 1  # 32 -> 3, 64 -> 4: down to 4x4
        layers: list[nn.Module] = []
        c_in = in_channels
        for stage in range(num_stages):
            c_out = 128 // 2 ** (num_stages - 1 - stage)
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),  # (B, c_out, H / 2**(stage+1), W / 2**(stage+1))
            ]
            c_in = c_out
        self.body = nn.Sequential(
            *layers,
            nn.Flatten(),  # (B, 128 * 4 * 4)
            nn.Linear(c_in * 16, feature_dim),  # the feature space, before its ReLU
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ConvAutoencoder(nn.Module):
    """(B, C, H, W) in [-1, 1] -> reconstruction (B, C, H, W) in [-1, 1] (tanh); `features` gives the
    (B, feature_dim) linear bottleneck. H = W divisible by 4 (28 for QuickDraw).

    Encoder: conv4x4 stride 2 (32) -> conv4x4 stride 2 (64) -> linear; decoder mirrors it with transposed
    convolutions. `num_classes` is 0: there is no head.
    """

    def __init__(self, in_channels: int, image_size: int, num_classes: int = 0, feature_dim: int = 64):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"autoencoder: image_size must be divisible by 4, got {image_size}")
        self.in_channels, self.image_size = in_channels, image_size
        self.num_classes, self.feature_dim = 0, feature_dim
        s = image_size // 4
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, 32, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),  # (B, 32, H/2, W/2)
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),  # (B, 64, H/4, W/4)
            nn.Flatten(),
            nn.Linear(64 * s * s, feature_dim),  # the bottleneck = the feature space
        )
        self.decoder = nn.Sequential(
            nn.Linear(feature_dim, 64 * s * s),
            nn.LeakyReLU(0.2),
            nn.Unflatten(1, (64, s, s)),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),  # (B, 32, H/2, W/2)
            nn.ConvTranspose2d(32, in_channels, 4, stride=2, padding=1),
            nn.Tanh(),  # (B, C, H, W) in [-1, 1], the pixel convention of data/arrays.py
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


@dataclass(frozen=True)
class FeatureArch:
    """A feature-network architecture: its class and how it is trained ("classifier" needs labels and is
    trained with cross-entropy; "autoencoder" with pixel MSE)."""

    cls: type[nn.Module]
    kind: str


FEATURE_ARCHS: dict[str, FeatureArch] = {
    "lenet": FeatureArch(LeNetClassifier, "classifier"),
    "cnn": FeatureArch(ConvClassifier, "classifier"),
    "autoencoder": FeatureArch(ConvAutoencoder, "autoencoder"),
}


def build_feature_net(arch: str, in_channels: int, image_size: int, num_classes: int, feature_dim: int) -> nn.Module:
    """The untrained network `arch` (a key of FEATURE_ARCHS); it has `.features(x)` and the four attributes
    that its checkpoint records (in_channels, image_size, num_classes, feature_dim)."""
    if arch not in FEATURE_ARCHS:
        raise ValueError(f"unknown feature network arch {arch!r}; allowed: {sorted(FEATURE_ARCHS)}")
    return FEATURE_ARCHS[arch].cls(in_channels, image_size, num_classes, feature_dim)
