"""SAGAN discriminator for the course's MLP setting (report 000, Sec. 3.3; Zhang et al. 2019).

Design (the course fixes the MLP; SAGAN's attention needs positions): the course MLP D with spectral norm on
every layer, and one self-attention block after the hidden layer `attention_after` (default 0: the 1024-wide
first layer), whose activations are viewed as a feature map of `attention_channels` channels on a square
grid — 1024 = 64 × 4 × 4, so attention runs over 16 positions with C/8 = 8 query/key channels. The map is
flattened again afterwards and the MLP continues unchanged. Keeping the course D (same widths, LeakyReLU 0.2,
dropout 0.3) makes `sagan` differ from `hinge_bn` by exactly SN + attention, which is the comparison report 000
draws ("the addition of attention layer at the end of the discriminator improved the results"). γ starts at 0,
so at initialisation the network is the spectrally normalised course D.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganlab.nets.layers import Dropout, SelfAttention2d, sn
from ganlab.nets.mlp import Head, head_size, squeeze_head
from ganlab.nets.registry import register
from ganlab.schema import Integer, Number, Strict


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
