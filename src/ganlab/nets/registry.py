"""Architectures by name: `params.yaml` says `generator: {arch: mlp, nz: 100, ...}`, this module turns that
into a validated options object and an `nn.Module`.

A new architecture is one module that calls `register(...)` plus one line in `_ARCH_MODULES`.
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
_ARCH_MODULES = ("ganlab.nets.mlp", "ganlab.nets.sagan", "ganlab.nets.dcgan", "ganlab.nets.bigan")


@dataclass(frozen=True)
class ArchSpec:
    options: type[BaseModel]
    build: Callable[..., nn.Module]  # build(options, image_shape=(C, H, W), num_classes=int) -> module


_REGISTRY: dict[str, dict[str, ArchSpec]] = {role: {} for role in ROLES}


def register(role: str, name: str, options: type[BaseModel]):
    """Decorator registering `build(options, *, image_shape, num_classes)` as architecture `name`."""

    def decorator(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY[role]:
            raise ValueError(f"{role} architecture {name!r} registered twice")
        _REGISTRY[role][name] = ArchSpec(options, build)
        return build

    return decorator


def architectures(role: str) -> dict[str, ArchSpec]:
    for module in _ARCH_MODULES:
        importlib.import_module(module)
    return _REGISTRY[role]


def validate_net(role: str, cfg: Any) -> BaseModel:
    """Check `cfg` (a `NetConfig`: `arch` + options) for `role`; errors name the key and the allowed values."""
    archs = architectures(role)
    if cfg.arch not in archs:
        raise ValueError(f"{role}.arch: unknown architecture {cfg.arch!r}; allowed: {sorted(archs)}")
    try:
        return archs[cfg.arch].options.model_validate(cfg.options())
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        kind = "unknown key (misspelled?)" if first["type"] == "extra_forbidden" else first["msg"]
        raise ValueError(f"{role}.{loc}: {kind} (architecture {cfg.arch!r})") from None


def build_net(role: str, cfg: Any, *, image_shape: tuple[int, int, int], num_classes: int = 0) -> nn.Module:
    options = validate_net(role, cfg)
    return architectures(role)[cfg.arch].build(options, image_shape=image_shape, num_classes=num_classes)
