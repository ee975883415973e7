"""GAN losses as small pure functions of discriminator logits, chosen by name (`loss:` in params.yaml).

Each entry maps (D(x_real), D(G(z))) logits to the discriminator's loss and D(G(z)) to the generator's loss.
All act on logits, never on sigmoid outputs (numerically stable BCE-with-logits).

Two flags tell the training loop which extra inputs an entry takes (one loop, no if/elif over names):
- `uses_labels`: multi-logit heads need class labels: `d(real, fake, y_real, y_fake, class_weight)` and
  `g(fake, y_fake, class_weight)`; logits are (B, C + 1) for a dataset with C classes.
- `g_uses_real`: BiGAN trains G and E on both terms: `g(fake, real)` with real = D(x, E(x)) carrying E's graph.
`realness(logits) -> (B,)` turns D's output into one real-vs-fake logit (what DRS/DGflow/DDLS consume).
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


def bigan_g(fake_logits: Tensor, real_logits: Tensor) -> Tensor:
    # Donahue et al. 2017, Sec. 3.4 / official code: G and E minimise the D loss with the labels swapped
    # ("inverted" non-saturating form): -E[log D(G(z), z)] - E[log(1 - D(x, E(x)))]
    return ns_d(fake_logits, real_logits)


def gmgan_ce_d(real_logits: Tensor, fake_logits: Tensor, y_real: Tensor, y_fake: Tensor,
               class_weight: float = 1.0) -> Tensor:
    # Report 004, Sec. 1.3: (B, C+1) logits; cross-entropy with real -> its class y, fake -> class C ("fake").
    # The two terms are summed ("the sum of the losses when having a real sample ... and a generated sample").
    fake_class = torch.full((fake_logits.shape[0],), fake_logits.shape[1] - 1, dtype=torch.long,
                            device=fake_logits.device)
    return F.cross_entropy(real_logits, y_real) + F.cross_entropy(fake_logits, fake_class)


def gmgan_ce_g(fake_logits: Tensor, y_fake: Tensor, class_weight: float = 1.0) -> Tensor:
    # G (and the mixture) want G(z̃_k) classified as the class k it was sampled from.
    return F.cross_entropy(fake_logits, y_fake)


def gmgan_sep_d(real_logits: Tensor, fake_logits: Tensor, y_real: Tensor, y_fake: Tensor,
                class_weight: float = 1.5) -> Tensor:
    # Report 004, Sec. 1.4 "objective separation": logits[:, :C] -> softmax over the C classes, logits[:, C] ->
    # sigmoid real/fake. D: BCE real/fake on both + class_weight * CE on REAL data only (Sec. 1.4: the class
    # loss on generated data "hindered performance"); weight 1.5 (Sec. 2.5).
    adv = ns_d(real_logits[:, -1], fake_logits[:, -1])
    return adv + class_weight * F.cross_entropy(real_logits[:, :-1], y_real)


def gmgan_sep_g(fake_logits: Tensor, y_fake: Tensor, class_weight: float = 1.5) -> Tensor:
    # G: non-saturating BCE (fake -> real) + class_weight * CE(fake -> the sampled class).
    return ns_g(fake_logits[:, -1]) + class_weight * F.cross_entropy(fake_logits[:, :-1], y_fake)


def _identity(logits: Tensor) -> Tensor:
    return logits


def class_head_realness(logits: Tensor) -> Tensor:
    # (B, C+1) softmax head: log P(real)/P(fake) = logsumexp(class logits) - fake logit
    return torch.logsumexp(logits[:, :-1], dim=1) - logits[:, -1]


def last_logit(logits: Tensor) -> Tensor:
    # separate-objective head: the sigmoid real/fake output is the last logit
    return logits[:, -1]


@dataclass(frozen=True)
class Loss:
    d: Callable[..., Tensor]
    g: Callable[..., Tensor]
    logit_is_log_ratio: bool  # True when a BCE-trained logit estimates log p_data/p_g (matters for DRS)
    uses_labels: bool = False  # d(real, fake, y_real, y_fake, class_weight), g(fake, y_fake, class_weight)
    g_uses_real: bool = False  # g(fake, real): BiGAN
    realness: Callable[[Tensor], Tensor] = _identity  # D output -> (B,) real-vs-fake logit
    multi_logit: bool = False  # D must have the (B, C+1) `classes_and_fake` head


LOSSES: dict[str, Loss] = {
    "ns": Loss(ns_d, ns_g, logit_is_log_ratio=True),
    "hinge": Loss(hinge_d, hinge_g, logit_is_log_ratio=False),
    "wasserstein": Loss(wasserstein_d, wasserstein_g, logit_is_log_ratio=False),
    "bigan": Loss(ns_d, bigan_g, logit_is_log_ratio=True, g_uses_real=True),
    "gmgan_ce": Loss(gmgan_ce_d, gmgan_ce_g, logit_is_log_ratio=True, uses_labels=True,
                     realness=class_head_realness, multi_logit=True),
    "gmgan_sep": Loss(gmgan_sep_d, gmgan_sep_g, logit_is_log_ratio=True, uses_labels=True,
                      realness=last_logit, multi_logit=True),
}


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, gen: torch.Generator | None) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||∇D(x̂)||₂ − 1)²] on x̂ = x + α(x̃ − x), α ~ U[0, 1] per sample."""
    alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), generator=gen, device=real.device)
    interp = (real + alpha * (fake - real)).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(interp).sum(), interp, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).pow(2).mean()
