"""Checkpoints that describe themselves and are written atomically.

A checkpoint is a dict of tensors and plain Python (loadable with `torch.load(weights_only=True)`): weights,
optimiser states, epoch, config, RNG states, loss history. `save_atomic` writes to a temporary file in the
same folder, fsyncs it and renames it over the target, so a kill at any moment leaves either the previous
complete checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from ganlab.io import atomic_path


def save_atomic(obj: Any, path: str | Path) -> None:
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by this project; never unpickles arbitrary objects."""
    return torch.load(path, map_location=map_location, weights_only=True)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def state_dict_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """Content hash of a state dict (names, dtypes, shapes, values), independent of file serialisation."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-d too
    return digest.hexdigest()
