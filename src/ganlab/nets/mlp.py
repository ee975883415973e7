"""The fully connected family: the course's fixed MLP GAN (catalogue "Shared building blocks"; source reports 000 and 003).

Generator: z (B, 100) -> 256 -> 512 -> 1024 -> C*H*W, LeakyReLU(0.2), tanh out, optional BatchNorm1d after
each hidden linear layer (`vanilla_bn`, `hinge_bn`). Discriminator: C*H*W -> 1024 -> 512 -> 256 -> 1 logit,
LeakyReLU(0.2), dropout 0.3. PyTorch default initialisation, as in the course template.

`head: classes_and_fake` gives D C+1 logits (C = the dataset's classes) for the supervised GM-GAN losses
(report 004: "10 classes + fake"). The MLP encoder (BiGAN, Donahue et al. 2017, MNIST setting) maps an image
to a latent code: C*H*W -> hidden -> nz, LeakyReLU(0.2), optional BatchNorm1d.

Also here, because they are MLP discriminators of the same family (one module per family keeps DVC's
dependencies exact: a change here reruns the MLP recipes only):
- `sagan_mlp` (report 000, Sec. 3.3; Zhang et al. 2019): the course MLP D with spectral norm on every layer
  and one self-attention block after the hidden layer `attention_after` (default 0: the 1024-wide first
  layer), whose activations are viewed as a feature map of `attention_channels` channels on a square grid —
  1024 = 64 × 4 × 4, so attention runs over 16 positions with C/8 = 8 query/key channels. The map is flattened
  again afterwards and the MLP continues unchanged. Keeping the course D (same widths, LeakyReLU 0.2, dropout
  0.3) makes `sagan` differ from `hinge_bn` by exactly SN + attention, which is the comparison report 000
  draws ("the addition of attention layer at the end of the discriminator improved the results"). γ starts
  at 0, so at initialisation the network is the spectrally normalised course D.
- `bigan_mlp`, the BiGAN joint discriminator D(x, z) (Donahue, Krähenbühl & Darrell 2017, the official
  permutation-invariant MNIST setup `--discrim_net mnist_mlp`): the flattened image and the code are
  concatenated and go through an MLP (LeakyReLU 0.2, dropout) to one logit. Forward contract:
  `forward(x: (B, C, H, W), y: ignored, z: (B, nz)) -> (B,)` logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganlab.nets.layers import Dropout, Head, SelfAttention2d, head_size, sn, squeeze_head
from ganlab.nets.registry import register
from ganlab.schema import Integer, Number, Strict

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


# ---------------------------------------------------------------------------------------------------
# sagan_mlp: the course D + spectral norm + self-attention (see the module docstring)


class SAGANMLPDiscriminatorOptions(Strict):
    hidden: tuple[Integer, ...] = (1024, 512, 256)
    dropout: Number = 0.3
    attention_after: Integer = 0  # index into `hidden`
    attention_channels: Integer = 64  # hidden[attention_after] / attention_channels must be a square
    spectral_norm: bool = True
    head: Head = "real_fake"


class SAGANMLPDiscriminator(nn.Module):
    def __init__(self, opts: SAGANMLPDiscriminatorOptions, image_shape: tuple[int, int, int], outputs: int):
        super().__init__()
        if not 0 <= opts.attention_after < len(opts.hidden):
            raise ValueError(f"attention_after: {opts.attention_after} is not an index of hidden {opts.hidden}")
        width_at = opts.hidden[opts.attention_after]
        side = math.isqrt(width_at // opts.attention_channels)
        if opts.attention_channels * side * side != width_at:
            raise ValueError(f"attention_channels: hidden[{opts.attention_after}] = {width_at} is not "
                             f"{opts.attention_channels} × a square number of positions")
        self.map_shape = (opts.attention_channels, side, side)
        self.before, self.after = nn.Sequential(), nn.Sequential()
        width = math.prod(image_shape)
        for i, h in enumerate(opts.hidden):
            block = self.before if i <= opts.attention_after else self.after
            block.extend([sn(nn.Linear(width, h), opts.spectral_norm), nn.LeakyReLU(0.2), Dropout(opts.dropout)])
            width = h
        self.attention = SelfAttention2d(opts.attention_channels, spectral=opts.spectral_norm)
        self.out = sn(nn.Linear(width, outputs), opts.spectral_norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.before(x.flatten(1))  # (B, hidden[attention_after])
        h = self.attention(h.view(-1, *self.map_shape)).flatten(1)  # (B, C, s, s) -> back to (B, C*s*s)
        return squeeze_head(self.out(self.after(h)))


@register("discriminator", "sagan_mlp", SAGANMLPDiscriminatorOptions)
def build_sagan_mlp_discriminator(opts, *, image_shape, num_classes=0) -> SAGANMLPDiscriminator:
    return SAGANMLPDiscriminator(opts, image_shape, head_size(opts.head, num_classes))


# ---------------------------------------------------------------------------------------------------
# bigan_mlp: the BiGAN joint discriminator D(x, z)


class BiGANMLPDiscriminatorOptions(Strict):
    nz: Integer = 50
    hidden: tuple[Integer, ...] = (1024, 1024)
    dropout: Number = 0.2


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


@register("discriminator", "bigan_mlp", BiGANMLPDiscriminatorOptions)
def build_bigan_mlp_discriminator(opts, *, image_shape, num_classes=0) -> BiGANMLPDiscriminator:
    return BiGANMLPDiscriminator(opts, image_shape)
