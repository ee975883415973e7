"""Process-level concerns, kept in one place: device choice, determinism switches, and the stage entry
wrapper that turns expected failures into one line on stderr and a distinct exit code."""

from __future__ import annotations

import functools
import os
import random
import sys
from typing import Callable

import numpy as np
import torch

from ganlab.schema import ConfigError

EXIT_BAD_INPUT = 2  # invalid params or input data: nothing was done
EXIT_DIVERGED = 3  # training produced NaN/Inf: the last good checkpoint is kept


class DivergedError(RuntimeError):
    """A loss or weight became NaN/Inf; the message says where (epoch, step)."""


class BadInputError(ValueError):
    """Input data (a file, an array) is not what the stage needs; the message names it."""


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when present, else CPU; anything else must be a valid torch device string."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device: invalid device {name!r}; allowed: auto, cpu, cuda, cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available; use auto or cpu")
    return device


def seed_everything(seed: int) -> None:
    """Seed the global RNGs once at a stage's entry (library code takes explicit `torch.Generator`s)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(device: torch.device) -> None:
    """Bit-reproducible kernels: always on the CPU; on CUDA, cuDNN determinism (slower, documented)."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def stage_entry(main: Callable[[], None]) -> Callable[[], None]:
    """Decorate a stage's `main`: expected failures print one line and exit non-zero, without a traceback."""

    @functools.wraps(main)
    def wrapped() -> None:
        try:
            main()
        except (ConfigError, BadInputError) as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except DivergedError as e:
            print(f"diverged: {e}", file=sys.stderr)
            sys.exit(EXIT_DIVERGED)

    return wrapped
