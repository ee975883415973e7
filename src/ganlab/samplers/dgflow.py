"""Discriminator Gradient flow (DGflow) in latent space -- Ansari, Ang & Soh, ICLR 2021 (arXiv 2012.00780).

Update (official code, clear-nus/DGflow `dgflow.py::_refine_batch/_velocity`, HEAD db7ea7b)::

    d = d(G(z))                                   # discriminator logit, estimate of log p_data/p_g
    s = 1            (f = 'KL')
    s = sigma(-d)    (f = 'logD')                 # code: 1 / (1 + exp(d))
    s = sigma(d)     (f = 'JS')                   # code: 1 / (1 + exp(-d))      (s is detached)
    v = s * grad_z d(G(z))
    z <- z + eta * v + sqrt(2 * eta) * sqrt(gamma) * xi,   xi ~ N(0, I)

Like the official code there is NO explicit prior term (-z) in the drift: only s * grad d. With the
discriminator held fixed, many steps therefore drift towards argmax d (the stationary density of the update is
proportional to exp(d / gamma) for f='KL'); the paper's 15-25 steps are a finite-time refinement, not a
converged sampler. A WGAN critic is used directly as d (official configs `*-wgan.yml`: `disc_type: c_wgan`,
`corr_type: null`); the optional density-ratio corrector C of the official code is the caller's business
(pass `logit_fn = lambda x: D(x) + C(x)`).

Defaults are the official CIFAR-10 / STL-10 SN-DCGAN and WGAN-GP configs (configs/*.yml): f_div 'KL',
eta 0.1, gamma 0.01, 25 steps -- the same values as the catalogue's "wgan + DGflow" row (experiments.md Sec. B).

Noise xi at step t for sample `seed` is `derived_normal([seed], "dgflow/noise", t, ...)`, so a sample's
trajectory does not depend on batching, and the first k steps of a 25-step run equal a k-step run
(the official code saves samples every 5 steps of one run; here you can simply run 5, 10, ... steps).
"""

from __future__ import annotations

import math
from typing import Callable, Literal, Sequence

import torch
from pydantic import Field
from torch import Tensor

from ganlab.samplers.latent import as_seed_tensor, batch_invariant_sigmoid, derived_normal
from ganlab.schema import NonNegativeInt, Number, PositiveFloat, Strict, validated

F_DIVERGENCES = ("KL", "logD", "JS")


class DGflowConfig(Strict):
    """DGflow options (postprocess method `dgflow`); defaults = official configs/cifar10-*.yml (SN-DCGAN, WGAN-GP)
    = the catalogue's "wgan + DGflow" row."""

    f_div: Literal[F_DIVERGENCES] = "KL"
    eta: PositiveFloat = 0.1  # step size
    gamma: Number = Field(0.01, ge=0)  # entropy-regularisation weight; noise std per step = sqrt(2 * eta * gamma)
    steps: NonNegativeInt = 25


_DEFAULT = DGflowConfig()


def _velocity_scale(d: Tensor, f_div: str) -> Tensor:
    """s(d) per f-divergence (detached), shape (B,): f'(rho) chain-rule factor with rho = exp(-d)."""
    if f_div == "KL":
        return torch.ones_like(d)
    if f_div == "logD":
        return batch_invariant_sigmoid(-d)
    return batch_invariant_sigmoid(d)  # 'JS'


def dgflow_refine(
    z: Tensor,
    generator: Callable[[Tensor], Tensor],
    logit_fn: Callable[[Tensor], Tensor],
    *,
    seeds: Sequence[int] | Tensor,
    f_div: str = _DEFAULT.f_div,
    eta: float = _DEFAULT.eta,
    gamma: float = _DEFAULT.gamma,
    steps: int = _DEFAULT.steps,
) -> Tensor:
    """Refine latents z (B, *zshape) with `steps` DGflow steps; returns the refined latents, same shape/dtype.

    `generator` maps z -> x, `logit_fn` maps x -> (B,) logits d(x); both must be per-sample (no batch
    coupling, e.g. BatchNorm in eval mode) and differentiable w.r.t. their input. `seeds[i]` keys the noise
    of row i. Works under an outer `torch.no_grad()` (gradients are enabled locally, only w.r.t. z; parameter
    .grad fields are not touched). The input tensor is not modified.
    """
    cfg = validated(DGflowConfig, f_div=f_div, eta=eta, gamma=gamma, steps=steps)
    seed_t = as_seed_tensor(seeds)
    if len(seed_t) != z.shape[0]:
        raise ValueError(f"seeds: need one seed per latent row, got {len(seed_t)} seeds for {z.shape[0]} rows")
    noise_scale = math.sqrt(2.0 * cfg.eta) * math.sqrt(cfg.gamma)  # official: sqrt(2*eta) * noise_factor
    z = z.detach().clone()
    for t in range(1, cfg.steps + 1):
        with torch.enable_grad():
            z_t = z.detach().requires_grad_(True)
            d = logit_fn(generator(z_t)).reshape(-1)  # (B,)
            # sum over the batch: rows are independent, so this gives each row its own grad_z d
            (grad,) = torch.autograd.grad(d.sum(), z_t)
        s = _velocity_scale(d.detach(), cfg.f_div).to(z.dtype)  # (B,)
        v = s.reshape(-1, *([1] * (z.dim() - 1))) * grad  # (B, *zshape)
        xi = derived_normal(seed_t, "dgflow/noise", t, tuple(z.shape[1:]), z.device, z.dtype)
        z = z + cfg.eta * v + noise_scale * xi
    return z
