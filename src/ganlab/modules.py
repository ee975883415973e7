"""A recipe's trained parts: built from its config, or loaded from a checkpoint written by `ganlab.train`.

`build_modules(cfg, ...)` makes G, D, E (BiGAN) and the latent prior from an experiment's config; `load_modules
(checkpoint, device)` rebuilds them with their trained weights, in eval mode. Sampling, probing, interpolation,
post-processing and the `ganlab` CLI all load through `load_modules`, so none of them imports the training loop:
a change to the loop reruns training (and, through new checkpoints, what follows), not the sampling code's stages.

The checkpoint's keys are owned by `ganlab.train.TrainingState` (`to_checkpoint`); this module reads the part
of them that describes the trained networks: `config`, `image_shape`, `num_classes` and one state dict per part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganlab.config import ExperimentConfig
from ganlab.nets.priors import Prior, build_prior
from ganlab.nets.registry import build_net
from ganlab.schema import ConfigError

# The checkpoint key of each trained part's state dict (`encoder` is {} without an encoder).
PART_KEYS = ("generator", "discriminator", "encoder", "prior")


@dataclass
class GANModules:
    """The trained parts of one recipe. `encoder` is None except for BiGAN; `prior` always exists (the
    standard-normal prior has no state)."""

    generator: nn.Module
    discriminator: nn.Module
    encoder: nn.Module | None
    prior: Prior

    def sampler(self) -> "LatentGenerator":
        return LatentGenerator(self.prior, self.generator)

    def all(self) -> list[nn.Module]:
        """G, D, (E), prior: the modules whose weights a checkpoint holds."""
        return [m for m in (self.generator, self.discriminator, self.encoder, self.prior) if m is not None]

    def state_dicts(self) -> dict[str, dict[str, Any]]:
        return {key: (getattr(self, key).state_dict() if getattr(self, key) is not None else {}) for key in PART_KEYS}

    def load_state_dicts(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.encoder is not None:
            self.encoder.load_state_dict(state["encoder"])
        self.prior.load_state_dict(state.get("prior", {}))  # checkpoints before priors: the normal prior (no state)


class LatentGenerator(nn.Module):
    """What sampling and post-processing call: ε (B, nz) standard normal [+ k (B,) components] -> images
    (B, C, H, W) in [-1, 1], i.e. G(prior(ε, k), prior.labels(k)).

    For priors without components (normal, uniform) `k` is None and `forward(ε)` is all it takes. For
    conditional and mixture priors every sample needs its component: evaluation samples take it from their
    seed, `components_for(seeds)` (a pure function of the seed, see `Prior.components_from_seeds`), so a
    sample is the same at any batch size; `labels_for(seeds)` is the class each of them was generated with.
    Post-processing methods that move ε keep k fixed per sample.
    """

    def __init__(self, prior: Prior, generator: nn.Module):
        super().__init__()
        self.prior, self.net = prior, generator
        self.nz = generator.nz
        self.num_components = prior.num_components

    def forward(self, eps: torch.Tensor, k: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.prior(eps, k), self.prior.labels(k))

    def components_for(self, seeds, device: torch.device | str) -> torch.Tensor | None:
        return self.prior.components_from_seeds(seeds, device)

    def labels_for(self, seeds, device: torch.device | str) -> torch.Tensor | None:
        """y (len(seeds),) int64: the class label G is given for each evaluation seed, prior.labels(k) with k =
        `components_for(seeds)`; None when the prior is not labelled (no components, or unsupervised ones)."""
        return self.prior.labels(self.components_for(seeds, device))


def build_modules(cfg: ExperimentConfig, image_shape: tuple[int, int, int], num_classes: int,
                  device: torch.device) -> GANModules:
    """Build every network (from the family `cfg.nets` only; any family for a checkpoint older than families)
    and the prior from config (G, D, E in that order from
    the global RNG; the prior's mixture means from their own seeded generator)."""
    def net(role: str, net_cfg) -> nn.Module:
        return build_net(role, net_cfg, family=cfg.nets, image_shape=image_shape, num_classes=num_classes).to(device)

    generator, discriminator = net("generator", cfg.generator), net("discriminator", cfg.discriminator)
    encoder = net("encoder", cfg.encoder) if cfg.encoder is not None else None
    try:
        prior = build_prior(cfg.prior, nz=generator.nz, num_classes=num_classes, seed=cfg.seed,
                            num_components=cfg.num_components, sigma=cfg.sigma, c=cfg.c)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return GANModules(generator, discriminator, encoder, prior.to(device))


def load_modules(checkpoint: dict[str, Any], device: torch.device) -> GANModules:
    """Rebuild every trained part of a checkpoint written by `ganlab.train`, in eval mode."""
    cfg = ExperimentConfig.model_validate(checkpoint["config"])
    parts = build_modules(cfg, tuple(checkpoint["image_shape"]), checkpoint["num_classes"], device)
    parts.load_state_dicts(checkpoint)
    for m in parts.all():
        m.eval()
    return parts


def trained_precision(checkpoint: dict[str, Any]) -> str:
    """The precision the checkpoint was trained in ("bf16" autocast or "fp32"; checkpoints before the knob: fp32).
    Its networks are float32 either way (bf16 autocast keeps float32 master weights)."""
    return checkpoint["config"].get("precision") or "fp32"


def load_sampler(checkpoint: dict[str, Any], device: torch.device) -> LatentGenerator:
    """The checkpoint's sampler, in eval mode: ε (B, nz) [+ k] -> images; see `LatentGenerator`."""
    return load_modules(checkpoint, device).sampler().to(device).eval()


def prior_changed(checkpoint: dict[str, Any]) -> dict[str, float]:
    """Per tensor of the trained prior (e.g. a mixture's "mu", "sigma"): the fraction of its entries that differ from
    their initial values, which are a pure function of the config and seed (an empty dict for priors without state).
    Shows whether a tiny prior learning rate moved the mixture at all: an Adam step of lr 1e-9 is below float32's
    resolution for entries of order 1, so they do not change."""
    cfg = ExperimentConfig.model_validate(checkpoint["config"])
    trained = checkpoint.get("prior", {})  # the prior's state dict (no networks need building for it)
    initial = build_prior(cfg.prior, nz=cfg.generator.options()["nz"], num_classes=checkpoint["num_classes"], seed=cfg.seed,
                          num_components=cfg.num_components, sigma=cfg.sigma, c=cfg.c).state_dict()
    return {name.removesuffix(".weight"): float((trained[name].cpu() != value).float().mean())
            for name, value in initial.items()}
