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

# CPU matmul/conv kernels pick their blocking from the batch dimension, so the same row can differ in the last
# bits between a batch of 1 and one of 500 (enough to flip a uint8 level now and then). The generator therefore
# always runs on blocks of exactly FORWARD_ROWS rows (the last block padded); at a fixed block size the result of
# a row does not depend on its position or its neighbours, so images are bit-identical at any `batch_size`.
FORWARD_ROWS = 64


def evaluation_seeds(n: int, seed: int) -> np.ndarray:
    return np.arange(seed * SEED_STRIDE, seed * SEED_STRIDE + n, dtype=np.int64)


@torch.no_grad()
def generate(generator: nn.Module, seeds: np.ndarray, *, device: torch.device) -> np.ndarray:
    """uint8 (len(seeds), H, W, C) images from `generator` (put in eval mode), one latent per seed (and one
    component per seed when the generator has `components_for`, e.g. a conditional or mixture sampler).
    Bit-identical for a seed whatever the other seeds are (see FORWARD_ROWS)."""
    generator.eval()
    components_for = getattr(generator, "components_for", None)
    out = []
    for i in range(0, len(seeds), FORWARD_ROWS):
        block = seeds[i : i + FORWARD_ROWS].tolist()
        n = len(block)
        padded = block + block[-1:] * (FORWARD_ROWS - n)  # pad by repeating the last seed
        z = seeded_normal(padded, (generator.nz,), device)
        k = components_for(padded, device) if components_for is not None else None
        images = generator(z) if k is None else generator(z, k)
        out.append(to_uint8(images[:n]).cpu().numpy())
    return np.concatenate(out)
