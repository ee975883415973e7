"""Layers shared by the architecture families (`ganlab.nets.mlp`, `ganlab.nets.dcgan`): spectral normalisation,
the SAGAN self-attention block, the discriminators' dropout, discriminator heads and the label vector of
conditional networks. A change here reruns every GAN; a change in one family's module reruns that family only."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def sn(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018): W / σ_max(W), σ_max by one power iteration per forward
    in training mode (torch's parametrisation; u and v are buffers, so they are in the state dict)."""
    return spectral_norm(module) if enabled else module


class Dropout(nn.Dropout):
    """`nn.Dropout` with a faster mask on the CPU: keep where U[0, 1) >= p, scale by 1 / (1 - p), the same
    distribution as torch's (each element kept with probability 1 - p, independently; the global RNG).

    Why: torch's CPU dropout draws its mask with `bernoulli_`, about 3x slower per element than `uniform_`
    on this project's CPU, and the MLP discriminator draws 344k mask elements per GAN step: the MLP step
    drops from 19.3 to 17.7 ms (`python -m benchmarks.training --ablate`). On CUDA, in eval mode and for
    p in {0, 1} it is torch's dropout.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.is_cuda or self.p in (0.0, 1.0) or self.inplace:
            return super().forward(x)
        return x * torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))


class SelfAttention2d(nn.Module):
    """SAGAN self-attention block (Zhang et al. 2019, Sec. 3, the paper form without the official code's
    2×2 max-pooling): f = W_f x, g = W_g x (C/8 channels), h = W_h x (C channels), all 1×1 convolutions;
    β = softmax over key positions of fᵀg; o = h β; returns y = γ·o + x with the scalar γ initialised to 0,
    so the block starts as the identity. `spectral=True` puts spectral norm on the three 1×1 convolutions
    (SAGAN applies SN to every layer of D).

    (B, C, H, W) -> (B, C, H, W); C must be >= 8.
    """

    def __init__(self, channels: int, spectral: bool = True):
        super().__init__()
        if channels < 8:
            raise ValueError(f"attention needs at least 8 channels (C/8 query size), got {channels}")
        inner = channels // 8
        self.query = sn(nn.Conv2d(channels, inner, 1, bias=False), spectral)
        self.key = sn(nn.Conv2d(channels, inner, 1, bias=False), spectral)
        self.value = sn(nn.Conv2d(channels, channels, 1, bias=False), spectral)
        self.gamma = nn.Parameter(torch.zeros(()))  # Zhang et al. 2019: γ initialised as 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (B, C/8, N), N = H*W
        k = self.key(x).flatten(2)  # (B, C/8, N)
        v = self.value(x).flatten(2)  # (B, C, N)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, N_query, N_key), rows sum to 1
        out = (v @ attn.transpose(1, 2)).view(b, c, h, w)  # o_j = Σ_i β_{j,i} h_i
        return x + self.gamma * out


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


class LabelVector(nn.Module):
    """y (B,) int64 -> (B, dim) float: one-hot (dim = C) or a learned embedding (dim = `embedding`)."""

    def __init__(self, num_classes: int, embedding: int | None):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a conditional network needs a labelled dataset, got num_classes={num_classes}")
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embedding) if embedding else None
        self.dim = embedding or num_classes

    def forward(self, y: torch.Tensor | None) -> torch.Tensor:
        if y is None:
            raise ValueError("this network is conditional: pass a label y per sample")
        return self.embed(y) if self.embed is not None else F.one_hot(y, self.num_classes).float()
