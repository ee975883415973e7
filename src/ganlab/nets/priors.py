"""Latent priors: what the generator's input is, and which label (if any) comes with it.

Every prior is written as a deterministic map of a standard-normal draw ε (B, nz) and a component index
k (B,) int64 (or None):

    z = prior(ε, k)            # the generator's input
    y = prior.labels(k)        # the class fed to G / D / the loss, or None

so training (ε ~ N(0, I) and k ~ U{0..K-1} from the loop's `torch.Generator`) and evaluation (ε from the
sample's seed via `seeded_normal`, k from the same seed via `components_from_seeds`) share one code path,
and an evaluation sample depends on its seed only (never on the batch size).

| `prior`              | z                                  | k               | y (label)  | source |
|----------------------|------------------------------------|-----------------|------------|--------|
| `normal`             | ε                                  | none            | none       | vanilla GAN |
| `uniform`            | 2Φ(ε) − 1, i.e. U[−1, 1]^nz        | none            | none       | BiGAN MNIST (`u-50`, Donahue et al.) |
| `class_normal`       | ε                                  | U{0..C−1}       | k          | conditional GANs (cDCGAN, cWGAN) |
| `static_mixture`     | μ_k + σ ε, μ_k ~ U[−c, c]^nz fixed | U{0..K−1}       | none       | GM-GAN static, unsupervised (report 000) |
| `supervised_mixture` | μ(y) + σ(y) ⊙ ε, μ, σ learnable    | U{0..C−1}, K = C | k         | GM-GAN dynamic, supervised (report 004) |

σ is a standard deviation (not a variance) throughout. The mixtures' means are drawn once at build time
from a private `torch.Generator` seeded with the experiment's seed (the global RNG is left untouched), and
live in the prior's state dict, so the checkpoint carries them.

A new prior is one class here plus one line in `PRIORS`. Priors live in `ganlab.nets` because, like the
architectures, they are built from an experiment's config and their state is part of the checkpoint.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

COMPONENT_PURPOSE = "prior_component"  # the derived stream that picks an evaluation sample's component
_MEAN_SEED_OFFSET = 7_919  # the mixture means' generator is seeded with seed + this (decoupled from other uses)


class Prior(nn.Module):
    """Base: no components, z = ε. Subclasses set `num_components` (K, 0 = none) and `labelled`."""

    num_components: int = 0
    labelled: bool = False  # True when the component index is also the class label y

    def __init__(self, nz: int):
        super().__init__()
        self.nz = nz

    @classmethod
    def build(cls, *, nz: int, num_classes: int, seed: int, num_components: int | None, sigma: float | None,
              c: float | None) -> "Prior":
        """Construct from the experiment's fields (each subclass takes the ones it declares in `PRIORS`)."""
        return cls(nz)

    def forward(self, eps: Tensor, k: Tensor | None = None) -> Tensor:
        return eps

    def labels(self, k: Tensor | None) -> Tensor | None:
        """The class label that goes with component k (None for unlabelled priors)."""
        return k if self.labelled else None

    def sample_components(self, n: int, gen: torch.Generator, device: torch.device) -> Tensor | None:
        """k ~ U{0..K-1}, (n,) int64 on `device`, drawn from `gen`; None without components."""
        if not self.num_components:
            return None
        return torch.randint(self.num_components, (n,), generator=gen, device=device)

    def components_from_seeds(self, seeds: Sequence[int] | Tensor, device: torch.device | str) -> Tensor | None:
        """The component of each evaluation seed: floor(K·u), u from the derived stream
        (seed, "prior_component", 0) of `ganlab.samplers.latent` — a pure function of the seed, uniform over
        the K components, independent of the seed's latent ε. None without components."""
        if not self.num_components:
            return None
        # imported here: only sampling needs it, and config validation (which imports this module) must not
        # make every stage depend on ganlab.samplers
        from ganlab.samplers.latent import derived_uniform

        u = derived_uniform(seeds, COMPONENT_PURPOSE, 0, (), device)  # (B,) float64 in (0, 1)
        return (u * self.num_components).long().clamp_(max=self.num_components - 1)

    def grid_components(self, n: int, device: torch.device) -> Tensor | None:
        """Components for the per-epoch sample grid: 0, 1, ..., K-1, 0, 1, ... (every class visible)."""
        if not self.num_components:
            return None
        return torch.arange(n, device=device) % self.num_components


class NormalPrior(Prior):
    """z = ε ~ N(0, I)."""


class UniformPrior(Prior):
    """z = 2Φ(ε) − 1 = erf(ε/√2) ~ U[−1, 1]^nz: the probability-integral transform of the seeded normal, so
    the uniform prior keeps the per-seed sampling convention."""

    def forward(self, eps: Tensor, k: Tensor | None = None) -> Tensor:
        return torch.erf(eps / math.sqrt(2.0))


class ClassNormalPrior(Prior):
    """z = ε ~ N(0, I) with a class label y ~ U{0..C−1} for conditional generators."""

    labelled = True

    def __init__(self, nz: int, num_classes: int):
        super().__init__(nz)
        if num_classes < 2:
            raise ValueError(f"prior class_normal needs a labelled dataset, got num_classes={num_classes}")
        self.num_components = num_classes

    @classmethod
    def build(cls, *, nz, num_classes, seed, num_components, sigma, c) -> "Prior":
        return cls(nz, num_classes)


class StaticMixturePrior(Prior):
    """Unsupervised static GM-GAN (Ben-Yosef & Weinshall 2018): K fixed components μ_k ~ U[−c, c]^nz, shared
    fixed σ; z = μ_k + σ ε with k ~ U{0..K−1}. Nothing is learned (buffers, not parameters)."""

    def __init__(self, nz: int, num_components: int, sigma: float, c: float, seed: int):
        super().__init__(nz)
        self.num_components = num_components
        gen = torch.Generator().manual_seed(seed + _MEAN_SEED_OFFSET)
        self.register_buffer("mu", (torch.rand(num_components, nz, generator=gen) * 2 - 1) * c)  # (K, nz)
        self.register_buffer("sigma", torch.full((num_components, nz), float(sigma)))  # (K, nz)

    @classmethod
    def build(cls, *, nz, num_classes, seed, num_components, sigma, c) -> "Prior":
        return cls(nz, num_components, sigma, c, seed)

    def forward(self, eps: Tensor, k: Tensor | None = None) -> Tensor:
        if k is None:
            raise ValueError("a mixture prior needs a component index per sample (k)")
        return self.mu[k] + self.sigma[k] * eps  # (B, nz)


class SupervisedMixturePrior(Prior):
    """Supervised dynamic GM-GAN (report 004, after Ben-Yosef & Weinshall 2018 and MMGAN): one component per
    class, z̃ = μ(y) + σ(y) ⊙ ε where μ and σ are bias-free linear layers over the one-hot y (so their weight
    columns are the per-class mean and std), μ initialised U[−c, c], σ to the constant σ₀. Learned with the
    generator's objective, at its own learning rate (`lr_prior`, "GM lr")."""

    labelled = True

    def __init__(self, nz: int, num_classes: int, sigma: float, c: float, seed: int):
        super().__init__(nz)
        if num_classes < 2:
            raise ValueError(f"prior supervised_mixture needs a labelled dataset, got num_classes={num_classes}")
        self.num_components = num_classes
        self.mu = nn.Linear(num_classes, nz, bias=False)  # weight (nz, K): column k = μ_k
        self.sigma = nn.Linear(num_classes, nz, bias=False)  # weight (nz, K): column k = σ_k
        gen = torch.Generator().manual_seed(seed + _MEAN_SEED_OFFSET)
        with torch.no_grad():
            self.mu.weight.copy_((torch.rand(nz, num_classes, generator=gen) * 2 - 1) * c)
            self.sigma.weight.fill_(float(sigma))

    @classmethod
    def build(cls, *, nz, num_classes, seed, num_components, sigma, c) -> "Prior":
        if num_components is not None and num_components != num_classes:
            raise ValueError(f"num_components: {num_components} must equal the dataset's {num_classes} classes "
                             "for prior 'supervised_mixture' (one component per class)")
        return cls(nz, num_classes, sigma, c, seed)

    def forward(self, eps: Tensor, k: Tensor | None = None) -> Tensor:
        if k is None:
            raise ValueError("a mixture prior needs a component index per sample (k)")
        # mu(one_hot(k)) is column k of mu.weight: gathered rather than multiplied, which is exact (a GEMM's
        # summation order, and so its last bit, may depend on the batch size) and has the same gradient
        return self.mu.weight.T[k] + self.sigma.weight.T[k] * eps  # (B, nz)


# name -> (class, the ExperimentConfig fields it requires). Fields not listed must be left unset.
PRIORS: dict[str, tuple[type[Prior], frozenset[str]]] = {
    "normal": (NormalPrior, frozenset()),
    "uniform": (UniformPrior, frozenset()),
    "class_normal": (ClassNormalPrior, frozenset()),
    "static_mixture": (StaticMixturePrior, frozenset({"num_components", "sigma", "c"})),
    "supervised_mixture": (SupervisedMixturePrior, frozenset({"sigma", "c", "lr_prior"})),
}
PRIOR_FIELDS = ("num_components", "sigma", "c", "lr_prior")


def check_prior_fields(name: str, values: dict[str, Any]) -> None:
    """Raise ValueError naming the key if a field `name` needs is unset, or one it ignores is set."""
    if name not in PRIORS:
        raise ValueError(f"prior: unknown prior {name!r}; allowed: {sorted(PRIORS)}")
    required = PRIORS[name][1]
    optional = {"num_components"} if name == "supervised_mixture" else set()  # must equal num_classes if set
    for key in PRIOR_FIELDS:
        if key in required and values.get(key) is None:
            raise ValueError(f"{key}: required by prior {name!r} (it needs {sorted(required)})")
        if key not in required | optional and values.get(key) is not None:
            raise ValueError(f"{key}: not used by prior {name!r}; remove it (prior {name!r} uses {sorted(required)})")


def build_prior(name: str, *, nz: int, num_classes: int, seed: int, num_components: int | None = None,
                sigma: float | None = None, c: float | None = None) -> Prior:
    """The prior `name` for a generator with latent size nz (see the table in the module docstring)."""
    if name not in PRIORS:
        raise ValueError(f"prior: unknown prior {name!r}; allowed: {sorted(PRIORS)}")
    return PRIORS[name][0].build(nz=nz, num_classes=num_classes, seed=seed, num_components=num_components,
                                 sigma=sigma, c=c)
