"""The course's fixed MLP GAN (catalogue "Shared building blocks"; source reports 000 and 003).

Generator: z (B, 100) -> 256 -> 512 -> 1024 -> C*H*W, LeakyReLU(0.2), tanh out, optional BatchNorm1d after
each hidden linear layer (`vanilla_bn`, `hinge_bn`). Discriminator: C*H*W -> 1024 -> 512 -> 256 -> 1 logit,
LeakyReLU(0.2), dropout 0.3. PyTorch default initialisation, as in the course template.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganlab.schema import Integer, Number, Strict
from ganlab.nets.registry import register


class MLPGeneratorOptions(Strict):
    nz: Integer = 100
    hidden: tuple[Integer, ...] = (256, 512, 1024)
    batch_norm: bool = False


class MLPDiscriminatorOptions(Strict):
    hidden: tuple[Integer, ...] = (1024, 512, 256)
    dropout: Number = 0.3


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
    def __init__(self, hidden: tuple[int, ...], image_shape: tuple[int, int, int], dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        width = math.prod(image_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # (B, C, H, W) -> (B,) logits
        return self.net(x.flatten(1)).squeeze(1)


@register("generator", "mlp", MLPGeneratorOptions)
def build_mlp_generator(opts: MLPGeneratorOptions, *, image_shape, num_classes=0) -> MLPGenerator:
    return MLPGenerator(opts.nz, opts.hidden, image_shape, opts.batch_norm)


@register("discriminator", "mlp", MLPDiscriminatorOptions)
def build_mlp_discriminator(opts: MLPDiscriminatorOptions, *, image_shape, num_classes=0) -> MLPDiscriminator:
    return MLPDiscriminator(opts.hidden, image_shape, opts.dropout)
