"""Process-level concerns, kept in one place: device and precision choice, determinism switches, and the stage
entry wrapper that turns expected failures into one line on stderr and a distinct exit code."""

from __future__ import annotations

import functools
import os
import random
import sys
from pathlib import Path
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


PRECISIONS = ("auto", "bf16", "fp32")


def bf16_native(device: torch.device, cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when `device` runs bfloat16 matrix products in hardware: a CUDA device with bf16 support, or a CPU
    with AVX512_BF16 or AMX-BF16 (read from `cpuinfo`; other systems: False)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(name: str, device: torch.device, cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """`auto` -> "bf16" where `device` runs bf16 matrix products natively (`bf16_native`), else "fp32"; "bf16" and
    "fp32" force one (bf16 autocast works everywhere, it is only slow without hardware support)."""
    if name not in PRECISIONS:
        raise ConfigError(f"precision: {name!r}; allowed: {', '.join(PRECISIONS)}")
    if name == "auto":
        return "bf16" if bf16_native(device, cpuinfo) else "fp32"
    return name


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


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary files a killed writer left beside `path` and return them.

    `ganlab.io.atomic_path` writes `<dir>/.<name>.<random><suffix>` and renames it over `<dir>/<name>`; a
    `kill -9` between the two leaves the temporary behind (the target itself is never torn). Call this
    only when no other process can be writing `path` (DVC runs one stage instance per output at a time)."""
    path = Path(path)
    stale = sorted(path.parent.glob(f".{path.name}.*")) if path.parent.is_dir() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def _bad_input_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the input data is wrong or missing", raised by the data helpers.

    Imported when a stage fails, not at import time: `ganlab.data` must stay importable without this module
    and this module without the dataset code."""
    from ganlab.data.common import DataFormatError
    from ganlab.data.download import ChecksumMismatch, DatasetUnavailable

    return ConfigError, BadInputError, DataFormatError, ChecksumMismatch, DatasetUnavailable


def _message(error: BaseException) -> str:
    """The error's message on one line (e.g. a YAML parser's report spans several), except for
    `DatasetUnavailable`, whose further lines are the instructions for placing the files by hand."""
    from ganlab.data.download import DatasetUnavailable

    text = str(error).strip()
    if isinstance(error, DatasetUnavailable):
        return text
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def stage_entry(main: Callable[[], None]) -> Callable[[], None]:
    """Decorate a stage's `main`: expected failures print their message on stderr and exit non-zero,
    without a traceback.

    Exit 2 (`EXIT_BAD_INPUT`): invalid params (`ConfigError`), bad input data (`BadInputError`,
    `DataFormatError`, `ChecksumMismatch`), one line; or a dataset that no source provides
    (`DatasetUnavailable`: its first line says so, the next ones list the sources tried and where to place
    the files by hand).
    Exit 3 (`EXIT_DIVERGED`): `DivergedError`. Anything else is a bug: the traceback is kept (exit 1)."""

    @functools.wraps(main)
    def wrapped() -> None:
        try:
            main()
        except DivergedError as e:
            print(f"diverged: {e}", file=sys.stderr)
            sys.exit(EXIT_DIVERGED)
        except Exception as e:
            if not isinstance(e, _bad_input_errors()):
                raise
            print(f"error: {_message(e)}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)

    return wrapped
