"""BiGAN joint discriminators D(x, z) (Donahue, Krähenbühl & Darrell 2017): D sees (image, code) pairs, real
pairs (x, E(x)) and fake pairs (G(z), z).

- `bigan_mlp` (MNIST, after the official permutation-invariant setup `--discrim_net mnist_mlp`): the flattened
  image and the code are concatenated and go through an MLP (LeakyReLU 0.2, dropout) to one logit.
- `bigan_conv` (AFHQ, report 002: "discriminator is deeper than generator and encoder"): the DCGAN D trunk
  embeds x to a (ndf·2^(n-1))·4·4 vector, an MLP embeds z, and a joint MLP maps their concatenation to a logit.

Forward contract: `forward(x: (B, C, H, W), y: ignored, z: (B, nz)) -> (B,)` logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganlab.nets.dcgan import Init, canvas, conv_trunk, dcgan_init_, leaky, pad_to_canvas
from ganlab.nets.layers import Dropout
from ganlab.nets.registry import register
from ganlab.schema import Integer, Number, Strict


class BiGANMLPDiscriminatorOptions(Strict):
    nz: Integer = 50
    hidden: tuple[Integer, ...] = (1024, 1024)
    dropout: Number = 0.2


class BiGANConvDiscriminatorOptions(Strict):
    nz: Integer = 100
    ndf: Integer = 32
    z_hidden: Integer = 512
    joint_hidden: Integer = 1024
    dropout: Number = 0.2
    init: Init = "dcgan"


class BiGANMLPDiscriminator(nn.Module):
    def __init__(self, opts: BiGANMLPDiscriminatorOptions, image_shape: tuple[int, int, int]):
        super().__init__()
        self.nz = opts.nz
        layers: list[nn.Module] = []
        width = math.prod(image_shape) + opts.nz
        for h in opts.hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), Dropout(opts.dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            raise ValueError("a BiGAN discriminator scores (x, z) pairs: pass z")
        return self.net(torch.cat([x.flatten(1), z], dim=1)).squeeze(1)  # (B, C*H*W + nz) -> (B,)


class BiGANConvDiscriminator(nn.Module):
    def __init__(self, opts: BiGANConvDiscriminatorOptions, image_shape: tuple[int, int, int]):
        super().__init__()
        self.nz = opts.nz
        self.side, n = canvas(image_shape)
        self.trunk, width = conv_trunk(image_shape[0], opts.ndf, n, leaky)  # (B, width, 4, 4)
        self.z_net = nn.Sequential(nn.Linear(opts.nz, opts.z_hidden), nn.LeakyReLU(0.2), Dropout(opts.dropout))
        self.joint = nn.Sequential(
            nn.Linear(width * 16 + opts.z_hidden, opts.joint_hidden), nn.LeakyReLU(0.2), Dropout(opts.dropout),
            nn.Linear(opts.joint_hidden, 1),
        )
        if opts.init == "dcgan":
            dcgan_init_(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            raise ValueError("a BiGAN discriminator scores (x, z) pairs: pass z")
        hx = self.trunk(pad_to_canvas(x, self.side)).flatten(1)  # (B, width*16)
        return self.joint(torch.cat([hx, self.z_net(z)], dim=1)).squeeze(1)


@register("discriminator", "bigan_mlp", BiGANMLPDiscriminatorOptions)
def build_bigan_mlp_discriminator(opts, *, image_shape, num_classes=0) -> BiGANMLPDiscriminator:
    return BiGANMLPDiscriminator(opts, image_shape)


@register("discriminator", "bigan_conv", BiGANConvDiscriminatorOptions)
def build_bigan_conv_discriminator(opts, *, image_shape, num_classes=0) -> BiGANConvDiscriminator:
    return BiGANConvDiscriminator(opts, image_shape)
