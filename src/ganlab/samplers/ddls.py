"""Discriminator Driven Latent Sampling (DDLS) -- Che et al., NeurIPS 2020 (arXiv 2003.06060).

The GAN defines an energy-based model in latent space (paper abstract; verified):

    E(z) = -log p0(z) - d(G(z)) = ||z||^2 / 2 - d(G(z)) + const        (p0 = N(0, I); d = discriminator logit)

whose pushforward G# (p0 e^d / Z) equals p_data when exp(d) = p_data / p_g exactly. We sample it with the
unadjusted Langevin algorithm (ULA), in the form of PyTorch-StudioGAN `src/utils/sample.py::langevin_sampling`:

    z <- z - (eps / 2) * grad_z E(z) + sqrt(eps) * noise_std * scaler * n,     n ~ N(0, I)
    every `decay_every` steps (if decay_every > 0):  eps <- eps * decay;  scaler <- scaler * decay

(scaler starts at 1). Two StudioGAN details made explicit here: (1) StudioGAN passes `langevin_noise_std` as
the *covariance* of its noise (`MultivariateNormal(covariance_matrix=I * noise_std)`), so its noise std is
sqrt(noise_std); here `noise_std` is a standard deviation (identical at the default 1.0); (2) the decay shrinks
the noise by decay**1.5 per period (sqrt of the rate and the scaler), i.e. it anneals the temperature, so a
decayed chain no longer targets exp(-E) exactly.

Defaults and their status (algorithms-and-datasets.md Sec. A3):
- step_size 0.01 and steps 1000: the commonly quoted DDLS setting, NOT verified in the paper (no official code);
  one third-party copy of StudioGAN's function defaults to the same values [3P].
- noise_std 1.0: plain ULA, whose stationary law approximates exp(-E) (the paper's sampler; MH correction off).
- decay 1.0, decay_every 0 (no decay): the paper's Langevin has no decay [M]; StudioGAN's CLI has no defaults
  (-1 = off); the third-party copy uses decay 0.1 every 200 steps [3P] -- pass those to reproduce it.
A WGAN critic is used directly as d (the paper's EBM argument for WGANs [M]; DGflow's official code does the
same [V]).

Noise at step t for sample `seed` is `derived_normal([seed], "ddls/noise", t, ...)` (batch-invariant).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from pydantic import Field
from torch import Tensor

from ganlab.samplers.latent import as_seed_tensor, default_prior_energy, derived_normal
from ganlab.schema import NonNegativeInt, Number, PositiveFloat, Strict, validated


class DDLSConfig(Strict):
    """ULA options of DDLS (postprocess method `ddls`); see the module docstring for the source of each default."""

    step_size: PositiveFloat = 0.01  # eps, commonly quoted [M]
    steps: NonNegativeInt = 1000  # commonly quoted [M]
    noise_std: Number = Field(1.0, ge=0)  # 1.0 = exact ULA
    decay: Number = Field(1.0, gt=0, le=1)  # multiplicative decay of eps and of the noise scaler; 1.0 = none
    decay_every: NonNegativeInt = 0  # apply `decay` every this many steps; 0 = never


_DEFAULT = DDLSConfig()


def ddls_energy(
    z: Tensor,
    generator: Callable[[Tensor], Tensor],
    logit_fn: Callable[[Tensor], Tensor],
    prior_energy: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """E(z) = prior_energy(z) - d(G(z)), shape (B,). Default prior energy ||z||^2 / 2 (standard normal)."""
    prior = default_prior_energy if prior_energy is None else prior_energy
    return prior(z).reshape(-1) - logit_fn(generator(z)).reshape(-1)


def ddls_refine(
    z: Tensor,
    generator: Callable[[Tensor], Tensor],
    logit_fn: Callable[[Tensor], Tensor],
    *,
    seeds: Sequence[int] | Tensor,
    step_size: float = _DEFAULT.step_size,
    steps: int = _DEFAULT.steps,
    noise_std: float = _DEFAULT.noise_std,
    decay: float = _DEFAULT.decay,
    decay_every: int = _DEFAULT.decay_every,
    prior_energy: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Run `steps` ULA steps on E(z) from the initial latents z (B, *zshape); returns the final latents.

    `prior_energy` maps z (B, *zshape) -> (B,) = -log p0(z) + const (default ||z||^2 / 2). `generator` and
    `logit_fn` must be per-sample and differentiable w.r.t. their input; `seeds[i]` keys the noise of row i.
    Gradients are enabled locally (works under `torch.no_grad()`), only w.r.t. z. The input is not modified.
    """
    cfg = validated(DDLSConfig, step_size=step_size, steps=steps, noise_std=noise_std, decay=decay,
                    decay_every=decay_every)
    seed_t = as_seed_tensor(seeds)
    if len(seed_t) != z.shape[0]:
        raise ValueError(f"seeds: need one seed per latent row, got {len(seed_t)} seeds for {z.shape[0]} rows")
    rate, scaler = cfg.step_size, 1.0
    z = z.detach().clone()
    for t in range(cfg.steps):
        with torch.enable_grad():
            z_t = z.detach().requires_grad_(True)
            energy = ddls_energy(z_t, generator, logit_fn, prior_energy)  # (B,)
            (grad,) = torch.autograd.grad(energy.sum(), z_t)  # rows independent -> per-row grad_z E
        n = derived_normal(seed_t, "ddls/noise", t, tuple(z.shape[1:]), z.device, z.dtype)
        z = z - 0.5 * rate * grad + math.sqrt(rate) * cfg.noise_std * scaler * n
        if cfg.decay_every > 0 and (t + 1) % cfg.decay_every == 0:  # StudioGAN: after step i with (i+1) % k == 0
            rate *= cfg.decay
            scaler *= cfg.decay
    return z
