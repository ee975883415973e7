"""Evaluation samples from integer seeds: sample i of an evaluation is G(z(seed_offset + i)), where z(s) is
`ganlab.samplers.latent.seeded_normal([s])`, so the same seed gives the same image at any batch size."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ganlab.data.arrays import to_uint8
from ganlab.samplers.latent import seeded_normal

SEED_STRIDE = 1_000_000  # evaluation seed k draws latents from seeds k*SEED_STRIDE, k*SEED_STRIDE + 1, ...


def evaluation_seeds(n: int, seed: int) -> np.ndarray:
    return np.arange(seed * SEED_STRIDE, seed * SEED_STRIDE + n, dtype=np.int64)


@torch.no_grad()
def generate(generator: nn.Module, seeds: np.ndarray, *, batch_size: int, device: torch.device) -> np.ndarray:
    """uint8 (len(seeds), H, W, C) images from `generator` (put in eval mode), one latent per seed."""
    generator.eval()
    out = []
    for i in range(0, len(seeds), batch_size):
        z = seeded_normal(seeds[i : i + batch_size].tolist(), (generator.nz,), device)
        out.append(to_uint8(generator(z)).cpu().numpy())
    return np.concatenate(out)
