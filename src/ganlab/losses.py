"""GAN losses as small pure functions of discriminator logits, chosen by name (`loss:` in params.yaml).

Each entry maps (D(x_real), D(G(z))) logits to the discriminator's loss and D(G(z)) to the generator's loss.
All act on logits, never on sigmoid outputs (numerically stable BCE-with-logits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def ns_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    # Goodfellow et al. 2014: -E[log D(x)] - E[log(1 - D(G(z)))], D = sigmoid(logit)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def ns_g(fake_logits: Tensor) -> Tensor:
    # non-saturating generator loss: -E[log D(G(z))]
    return F.softplus(-fake_logits).mean()


def hinge_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    # Lim & Ye 2017; SAGAN (Zhang et al. 2019) model.py: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g(fake_logits: Tensor) -> Tensor:
    return -fake_logits.mean()


def wasserstein_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    # Arjovsky et al. 2017: the critic maximises E[D(x)] - E[D(G(z))]
    return fake_logits.mean() - real_logits.mean()


def wasserstein_g(fake_logits: Tensor) -> Tensor:
    return -fake_logits.mean()


@dataclass(frozen=True)
class Loss:
    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor], Tensor]
    logit_is_log_ratio: bool  # True when a BCE-trained logit estimates log p_data/p_g (matters for DRS)


LOSSES: dict[str, Loss] = {
    "ns": Loss(ns_d, ns_g, logit_is_log_ratio=True),
    "hinge": Loss(hinge_d, hinge_g, logit_is_log_ratio=False),
    "wasserstein": Loss(wasserstein_d, wasserstein_g, logit_is_log_ratio=False),
}


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, gen: torch.Generator | None) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||∇D(x̂)||₂ − 1)²] on x̂ = x + α(x̃ − x), α ~ U[0, 1] per sample."""
    alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), generator=gen, device=real.device)
    interp = (real + alpha * (fake - real)).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(interp).sum(), interp, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).pow(2).mean()
