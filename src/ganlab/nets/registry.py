"""Architectures by name: `params.yaml` says `generator: {arch: mlp, nz: 100, ...}`, this module turns that
into a validated options object and an `nn.Module`.

Architectures come in families, one module each (`FAMILIES`: `ganlab.nets.mlp`, `ganlab.nets.dcgan`); an
experiment names its family in `params.yaml` (`experiments.<name>.nets`), so its DVC stages depend on that
module alone and only that module is imported to build it. A new architecture is a `register(...)` call in
its family's module; a new family is one module plus one line in `FAMILIES`.
Contract for every registered network:
- generator: `forward(z: (B, nz), y: (B,) int64 | None) -> (B, C, H, W)` in [-1, 1]; attribute `nz`.
- discriminator: `forward(x: (B, C, H, W), y: (B,) | None) -> (B,)` logits (or (B, C+1) for the
  `classes_and_fake` head); BiGAN joint discriminators take the code too: `forward(x, y, z: (B, nz))`.
- encoder: `forward(x: (B, C, H, W)) -> (B, nz)`; attribute `nz`.
Unconditional networks ignore `y`; conditional ones raise if it is None.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ValidationError
from torch import nn

ROLES = ("generator", "discriminator", "encoder")
FAMILIES = {"mlp": "ganlab.nets.mlp", "dcgan": "ganlab.nets.dcgan"}  # family -> module (src/ganlab/nets/<family>.py)


@dataclass(frozen=True)
class ArchSpec:
    options: type[BaseModel]
    build: Callable[..., nn.Module]  # build(options, image_shape=(C, H, W), num_classes=int) -> module
    family: str  # the module it is registered in


_REGISTRY: dict[str, dict[str, ArchSpec]] = {role: {} for role in ROLES}


def register(role: str, name: str, options: type[BaseModel]):
    """Decorator registering `build(options, *, image_shape, num_classes)` as architecture `name`."""

    def decorator(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY[role]:
            raise ValueError(f"{role} architecture {name!r} registered twice")
        _REGISTRY[role][name] = ArchSpec(options, build, build.__module__.rsplit(".", 1)[-1])
        return build

    return decorator


def check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown nets family {family!r}; allowed: {sorted(FAMILIES)}")


def architectures(role: str, family: str | None = None) -> dict[str, ArchSpec]:
    """The registered architectures for `role`: of one family (importing its module only), or of all."""
    if family is not None:
        check_family(family)
    for name, module in FAMILIES.items():
        if family in (None, name):
            importlib.import_module(module)
    return {arch: spec for arch, spec in _REGISTRY[role].items() if family in (None, spec.family)}


def validate_net(role: str, cfg: Any, family: str | None = None) -> BaseModel:
    """Check `cfg` (a `NetConfig`: `arch` + options) for `role` in nets family `family` (None: any family);
    errors name the key and the allowed values."""
    archs = architectures(role, family)
    if cfg.arch not in archs:
        elsewhere = [f for f in FAMILIES if family is not None and f != family and cfg.arch in architectures(role, f)]
        hint = f" (it is in family {elsewhere[0]!r}: set the experiment's `nets`)" if elsewhere else ""
        where = f" in nets family {family!r}{hint}" if family is not None else ""
        raise ValueError(f"{role}.arch: unknown architecture {cfg.arch!r}{where}; allowed: {sorted(archs)}")
    try:
        return archs[cfg.arch].options.model_validate(cfg.options())
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        kind = "unknown key (misspelled?)" if first["type"] == "extra_forbidden" else first["msg"]
        raise ValueError(f"{role}.{loc}: {kind} (architecture {cfg.arch!r})") from None


def build_net(role: str, cfg: Any, *, family: str | None = None, image_shape: tuple[int, int, int], num_classes: int = 0) -> nn.Module:
    options = validate_net(role, cfg, family)
    return architectures(role, family)[cfg.arch].build(options, image_shape=image_shape, num_classes=num_classes)
