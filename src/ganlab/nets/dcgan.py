"""DCGAN (Radford et al. 2016) at any square resolution, optionally class-conditional (reports 001, 002).

Geometry. The networks work on a power-of-two canvas S = 2^ceil(log2(max(H, W))) >= 8: 28×28 datasets (MNIST,
QuickDraw sheep) run at 32×32, CIFAR-10 at 32, AFHQ at 64. The course (report 001) resized MNIST to 32×32;
here D pads the 28×28 image with the background value −1 (2 pixels each side) and G generates 32×32 and
returns the centre 28×28 crop. Padding is lossless and exactly invertible, so the prepared 28×28 arrays, the
evaluation and the feature network stay at 28×28 (a resize would blur the digits and change their scale).

    G: (B, nz [+ label], 1, 1) -ConvT(4,1,0)-> (B, ngf·2^(n-1), 4, 4) -[ConvT(4,2,1) BN ReLU]×(n-1)->
       (B, ngf, S/2, S/2) -ConvT(4,2,1) tanh-> (B, C, S, S) -> centre crop (B, C, H, W)        n = log2(S/4)
    D: (B, C [+ label maps], S, S) -Conv(4,2,1) LReLU-> (B, ndf, S/2, S/2) -[Conv(4,2,1) BN LReLU]×(n-1)->
       (B, ndf·2^(n-1), 4, 4) -Conv(4,1,0)-> (B, 1 | C+1) logits
At S = 64 that is 5 transposed convolutions in G and 5 convolutions in D (report 002's AFHQ networks); at
S = 32 it is RDFIA's 4 + 4 (report 001).

Initialisation `init: dcgan`: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0 (Radford et al.
2016, Sec. 4; the pytorch/examples `weights_init`); `init: default` keeps PyTorch's defaults (report 001's
ablation). Conditioning (Mirza & Osindero 2014; report 001's cDCGAN): G gets the label concatenated to z
(one-hot, or a learned `label_embedding`-d vector: report 002's cWGAN, 3-d embedding + 97-d latent); D gets
the same label vector broadcast to constant feature maps concatenated to the image channels.

The conv encoder (BiGAN, report 002: "5 conv layers each followed by ReLU and batchnorm except the last") is
D's trunk with ReLU instead of LeakyReLU and a final 4×4 convolution to nz channels: (B, C, H, W) -> (B, nz).

`bigan_conv`, the BiGAN joint discriminator D(x, z) for images (AFHQ, report 002: "discriminator is deeper
than generator and encoder"; Donahue et al. 2017): the DCGAN D trunk embeds x to a (ndf·2^(n-1))·4·4 vector,
an MLP embeds z, and a joint MLP maps their concatenation to a logit. Forward contract:
`forward(x: (B, C, H, W), y: ignored, z: (B, nz)) -> (B,)` logits.
"""

from __future__ import annotations

import math
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.nets.layers import Dropout, Head, LabelVector, head_size, squeeze_head
from ganlab.nets.registry import register
from ganlab.schema import Integer, Number, Strict

Init = Literal["dcgan", "default"]
BACKGROUND = -1.0  # model-space value of a black pixel: the padding of 28×28 images


def canvas(image_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(S, n): the square power-of-two canvas side S >= 8 holding an H×W image, and n = log2(S / 4)."""
    _, h, w = image_shape
    side = max(8, 2 ** math.ceil(math.log2(max(h, w))))
    return side, int(math.log2(side // 4))


def pad_to_canvas(x: torch.Tensor, side: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, S, S), centred, padded with the background value."""
    h, w = x.shape[-2:]
    top, left = (side - h) // 2, (side - w) // 2
    if top == left == 0 and h == w == side:
        return x
    return F.pad(x, (left, side - w - left, top, side - h - top), value=BACKGROUND)


def crop_from_canvas(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, C, S, S) -> the centre (B, C, H, W): the inverse of `pad_to_canvas`."""
    side = x.shape[-1]
    top, left = (side - h) // 2, (side - w) // 2
    return x[..., top : top + h, left : left + w]


def dcgan_init_(module: nn.Module) -> None:
    """Radford et al. 2016: every conv/linear weight ~ N(0, 0.02), BatchNorm weight ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGeneratorOptions(Strict):
    nz: Integer = 100
    ngf: Integer = 32
    init: Init = "dcgan"
    conditional: bool = False
    label_embedding: Integer | None = None  # None: one-hot label; an int: learned embedding of that size
    extra_layers: Integer = 0  # "deeper" DCGAN (report 001, CIFAR-10): 3×3 conv-BN-ReLU layers before the output


class DCGANDiscriminatorOptions(Strict):
    ndf: Integer = 32
    init: Init = "dcgan"
    conditional: bool = False
    label_embedding: Integer | None = None
    extra_layers: Integer = 0  # 3×3 conv-BN-LeakyReLU layers after the first (cf. WGAN's DCGAN_D n_extra_layers)
    head: Head = "real_fake"


class DCGANEncoderOptions(Strict):
    nz: Integer = 100
    nef: Integer = 32
    init: Init = "dcgan"


class DCGANGenerator(nn.Module):
    def __init__(self, opts: DCGANGeneratorOptions, image_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        self.nz, self.image_shape = opts.nz, tuple(image_shape)
        side, n = canvas(image_shape)
        self.label = LabelVector(num_classes, opts.label_embedding) if opts.conditional else None
        width = opts.ngf * 2 ** (n - 1)
        in_ch = opts.nz + (self.label.dim if self.label else 0)
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_ch, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(True)]  # (B, ngf·2^(n-1), 4, 4)
        for _ in range(n - 1):  # each stage doubles the side, halves the width
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU(True)]
            width //= 2
        for _ in range(opts.extra_layers):  # (B, ngf, S/2, S/2) kept
            layers += [nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(width, image_shape[0], 4, 2, 1, bias=False), nn.Tanh()]  # (B, C, S, S)
        self.net = nn.Sequential(*layers)
        if opts.init == "dcgan":
            dcgan_init_(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.label is not None:
            z = torch.cat([z, self.label(y)], dim=1)  # (B, nz + label dim)
        out = self.net(z[:, :, None, None])  # (B, C, S, S)
        return crop_from_canvas(out, *self.image_shape[1:])


def leaky() -> nn.Module:
    return nn.LeakyReLU(0.2, True)


def conv_trunk(in_ch: int, width: int, n: int, act: Callable[[], nn.Module],
               extra_layers: int = 0) -> tuple[nn.Sequential, int]:
    """(B, in_ch, S, S) -> (B, width·2^(n-1), 4, 4): n strided 4×4 convs, BN on all but the first; optional
    3×3 conv-BN-act layers at S/2 after the first."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, width, 4, 2, 1, bias=False), act()]
    for _ in range(extra_layers):
        layers += [nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), act()]
    for _ in range(n - 1):
        layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), act()]
        width *= 2
    return nn.Sequential(*layers), width


class DCGANDiscriminator(nn.Module):
    def __init__(self, opts: DCGANDiscriminatorOptions, image_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        self.side, n = canvas(image_shape)
        self.label = LabelVector(num_classes, opts.label_embedding) if opts.conditional else None
        in_ch = image_shape[0] + (self.label.dim if self.label else 0)
        self.trunk, width = conv_trunk(in_ch, opts.ndf, n, leaky, opts.extra_layers)
        self.out = nn.Conv2d(width, head_size(opts.head, num_classes), 4, 1, 0, bias=False)  # (B, outputs, 1, 1)
        if opts.init == "dcgan":
            dcgan_init_(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = pad_to_canvas(x, self.side)
        if self.label is not None:
            maps = self.label(y)[:, :, None, None].expand(-1, -1, self.side, self.side)  # (B, label dim, S, S)
            x = torch.cat([x, maps], dim=1)
        return squeeze_head(self.out(self.trunk(x)).flatten(1))


class DCGANEncoder(nn.Module):
    def __init__(self, opts: DCGANEncoderOptions, image_shape: tuple[int, int, int]):
        super().__init__()
        self.nz = opts.nz
        self.side, n = canvas(image_shape)
        self.trunk, width = conv_trunk(image_shape[0], opts.nef, n, lambda: nn.ReLU(True))
        self.out = nn.Conv2d(width, opts.nz, 4, 1, 0)  # (B, nz, 1, 1): no BN/ReLU on the code
        if opts.init == "dcgan":
            dcgan_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.trunk(pad_to_canvas(x, self.side))).flatten(1)


@register("generator", "dcgan", DCGANGeneratorOptions)
def build_dcgan_generator(opts, *, image_shape, num_classes=0) -> DCGANGenerator:
    return DCGANGenerator(opts, image_shape, num_classes)


@register("discriminator", "dcgan", DCGANDiscriminatorOptions)
def build_dcgan_discriminator(opts, *, image_shape, num_classes=0) -> DCGANDiscriminator:
    return DCGANDiscriminator(opts, image_shape, num_classes)


@register("encoder", "dcgan", DCGANEncoderOptions)
def build_dcgan_encoder(opts, *, image_shape, num_classes=0) -> DCGANEncoder:
    return DCGANEncoder(opts, image_shape)


# ---------------------------------------------------------------------------------------------------
# bigan_conv: the BiGAN joint discriminator D(x, z) on a DCGAN trunk


class BiGANConvDiscriminatorOptions(Strict):
    nz: Integer = 100
    ndf: Integer = 32
    z_hidden: Integer = 512
    joint_hidden: Integer = 1024
    dropout: Number = 0.2
    init: Init = "dcgan"


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


@register("discriminator", "bigan_conv", BiGANConvDiscriminatorOptions)
def build_bigan_conv_discriminator(opts, *, image_shape, num_classes=0) -> BiGANConvDiscriminator:
    return BiGANConvDiscriminator(opts, image_shape)
