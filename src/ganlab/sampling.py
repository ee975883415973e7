"""Evaluation samples from integer seeds: sample i of an evaluation is G(z(seed_offset + i)), where z(s) is
`ganlab.samplers.latent.seeded_normal([s])`, so the same seed gives the same image at any batch size.

Conditional and mixture generators (`ganlab.train.LatentGenerator` with components) also need a component /
class per sample: it is `generator.components_for([s])`, a pure function of the same seed (see
`ganlab.nets.priors.Prior.components_from_seeds`), so those samples are batch-size invariant too."""

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
    """uint8 (len(seeds), H, W, C) images from `generator` (put in eval mode), one latent per seed (and one
    component per seed when the generator has `components_for`, e.g. a conditional or mixture sampler)."""
    generator.eval()
    components_for = getattr(generator, "components_for", None)
    out = []
    for i in range(0, len(seeds), batch_size):
        batch = seeds[i : i + batch_size].tolist()
        z = seeded_normal(batch, (generator.nz,), device)
        k = components_for(batch, device) if components_for is not None else None
        out.append(to_uint8(generator(z) if k is None else generator(z, k)).cpu().numpy())
    return np.concatenate(out)
