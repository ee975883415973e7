"""Hard truncation of the latent (the BigGAN truncation trick, Brock et al. 2019, Sec. 3.1).

Convention: "threshold psi, unit std". Each coordinate of z ~ N(0, 1) with |z_i| > psi is redrawn until it
falls inside [-psi, psi], i.e. z_i ~ N(0, 1) conditioned on |z_i| <= psi = `scipy.stats.truncnorm(-psi, psi)`.
This is PyTorch-StudioGAN's `src/utils/sample.py::truncated_normal(size, threshold)` (`--truncation_factor`
= psi), NOT the widely copied TF-Hub BigGAN colab convention `t * truncnorm(-2, 2)` (std t, truncated at 2t),
and not StyleGAN's psi (interpolation towards the mean w in W space). A report's "hard truncation psi=0.9"
therefore means: resample every |z_i| > 0.9.

Per-seed determinism: the draws of sample `s` come from one CPU `torch.Generator` seeded with `s` -- the same
generator as `latent.seeded_normal` -- so the first draw IS the untruncated latent of seed `s`; only the
offending coordinates are then redrawn, in flat order, from the same generator. Hence
`truncated_normal(seeds, shape, psi=inf)` equals `seeded_normal(seeds, shape)`, a truncated sample shares all its
in-range coordinates with the baseline sample of the same seed (paired comparisons), and the result does not
depend on batch size or position. Acceptance per coordinate and draw is erf(psi / sqrt 2): 0.954 at psi=2,
0.632 at psi=0.9, 0.032 at psi=0.04.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ganlab.samplers.latent import as_seed_tensor
from ganlab.schema import PositiveFloat, Strict, validated


class TruncationConfig(Strict):
    """Options of hard truncation (postprocess method `truncation`; required, no default).

    psi: truncation threshold in units of the prior's std (> 0; `math.inf` = no truncation). Values in the
    catalogue (experiments.md Sec. B, report 003): 2.0 for the vanilla GAN, 0.9 for the WGAN.
    """

    psi: PositiveFloat


def truncated_normal(
    seeds: Sequence[int] | Tensor, shape: tuple[int, ...], psi: float, device: torch.device | str
) -> Tensor:
    """Latents z with every |z_i| <= psi: (len(seeds), *shape) float32 on `device`, one row per seed.

    Each coordinate is N(0, 1) conditioned on |z_i| <= psi (resample-until-inside); rows are independent and
    row i depends only on seeds[i]. Raises ValueError for psi <= 0.
    """
    validated(TruncationConfig, psi=psi)
    rows = []
    for s in as_seed_tensor(seeds).tolist():
        gen = torch.Generator(device="cpu")
        gen.manual_seed(s)
        z = torch.randn(shape, generator=gen)
        if math.isfinite(psi):
            flat = z.view(-1)
            bad = flat.abs() > psi
            while bool(bad.any()):
                # redraw only the offending coordinates, in flat order, from this seed's generator
                idx = bad.nonzero().squeeze(1)
                flat[idx] = torch.randn(idx.numel(), generator=gen)
                bad = flat.abs() > psi
        rows.append(z)
    if not rows:
        return torch.empty((0, *shape), device=device)
    return torch.stack(rows).to(device)  # (B, *shape)
