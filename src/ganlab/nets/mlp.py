"""The course's fixed MLP GAN (catalogue "Shared building blocks"; source reports 000 and 003).

Generator: z (B, 100) -> 256 -> 512 -> 1024 -> C*H*W, LeakyReLU(0.2), tanh out, optional BatchNorm1d after
each hidden linear layer (`vanilla_bn`, `hinge_bn`). Discriminator: C*H*W -> 1024 -> 512 -> 256 -> 1 logit,
LeakyReLU(0.2), dropout 0.3. PyTorch default initialisation, as in the course template.

`head: classes_and_fake` gives D C+1 logits (C = the dataset's classes) for the supervised GM-GAN losses
(report 004: "10 classes + fake"). The MLP encoder (BiGAN, Donahue et al. 2017, MNIST setting) maps an image
to a latent code: C*H*W -> hidden -> nz, LeakyReLU(0.2), optional BatchNorm1d.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from typing import Literal

from ganlab.nets.layers import Dropout
from ganlab.nets.registry import register
from ganlab.schema import Integer, Number, Strict

Head = Literal["real_fake", "classes_and_fake"]


def head_size(head: str, num_classes: int) -> int:
    """Logits of a discriminator head: 1 (real/fake), or C + 1 (C classes + fake; needs a labelled dataset)."""
    if head == "real_fake":
        return 1
    if num_classes < 2:
        raise ValueError(f"head 'classes_and_fake' needs a labelled dataset, got num_classes={num_classes}")
    return num_classes + 1


def squeeze_head(logits: torch.Tensor) -> torch.Tensor:
    """(B, 1) -> (B,) for a real/fake head; (B, C+1) stays."""
    return logits.squeeze(1) if logits.shape[1] == 1 else logits


class MLPGeneratorOptions(Strict):
    nz: Integer = 100
    hidden: tuple[Integer, ...] = (256, 512, 1024)
    batch_norm: bool = False


class MLPDiscriminatorOptions(Strict):
    hidden: tuple[Integer, ...] = (1024, 512, 256)
    dropout: Number = 0.3
    head: Head = "real_fake"


class MLPEncoderOptions(Strict):
    nz: Integer = 100
    hidden: tuple[Integer, ...] = (1024, 1024)
    batch_norm: bool = True


class MLPGenerator(nn.Module):
    def __init__(self, nz: int, hidden: tuple[int, ...], image_shape: tuple[int, int, int], batch_norm: bool):
        super().__init__()
        self.nz = nz
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        width = nz
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.LeakyReLU(0.2))
            width = h
        layers += [nn.Linear(width, math.prod(image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # (B, nz) -> (B, C*H*W) -> (B, C, H, W)
        return self.net(z).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, hidden: tuple[int, ...], image_shape: tuple[int, int, int], dropout: float, outputs: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        width = math.prod(image_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # (B, C, H, W) -> (B,) logits, or (B, C+1) for the classes_and_fake head
        return squeeze_head(self.net(x.flatten(1)))


class MLPEncoder(nn.Module):
    """BiGAN encoder E: (B, C, H, W) -> (B, nz) code (linear output: the code lives in the prior's space)."""

    def __init__(self, nz: int, hidden: tuple[int, ...], image_shape: tuple[int, int, int], batch_norm: bool):
        super().__init__()
        self.nz = nz
        layers: list[nn.Module] = []
        width = math.prod(image_shape)
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.LeakyReLU(0.2))
            width = h
        layers.append(nn.Linear(width, nz))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


@register("generator", "mlp", MLPGeneratorOptions)
def build_mlp_generator(opts: MLPGeneratorOptions, *, image_shape, num_classes=0) -> MLPGenerator:
    return MLPGenerator(opts.nz, opts.hidden, image_shape, opts.batch_norm)


@register("discriminator", "mlp", MLPDiscriminatorOptions)
def build_mlp_discriminator(opts: MLPDiscriminatorOptions, *, image_shape, num_classes=0) -> MLPDiscriminator:
    return MLPDiscriminator(opts.hidden, image_shape, opts.dropout, head_size(opts.head, num_classes))


@register("encoder", "mlp", MLPEncoderOptions)
def build_mlp_encoder(opts: MLPEncoderOptions, *, image_shape, num_classes=0) -> MLPEncoder:
    return MLPEncoder(opts.nz, opts.hidden, image_shape, opts.batch_norm)
