"""The one pixel convention of the project.

Stored images are uint8 in [0, 255], shape (N, H, W, C) (channels last, as datasets ship them).
Networks see float32 in [-1, 1], shape (N, C, H, W). These two functions are the only place that
maps one to the other, so that real and generated images are scored on exactly the same scale.
"""

from __future__ import annotations

import numpy as np
import torch


def to_model(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) in [0, 255] -> float32 (N, C, H, W) in [-1, 1]: x / 127.5 - 1."""
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) images, got shape {tuple(images.shape)}")
    return images.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C): round((x + 1) * 127.5), clipped to [0, 255].

    The exact inverse of `to_model` on its image: to_uint8(to_model(u)) == u for every uint8 u.
    """
    if images.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) images, got shape {tuple(images.shape)}")
    scaled = (images.detach().float() + 1.0) * 127.5
    return scaled.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


PREPARED_KEYS = ("x_train", "y_train", "x_test", "y_test", "class_names")


def load_prepared(path, keys: tuple[str, ...] = PREPARED_KEYS) -> dict[str, np.ndarray]:
    """Read a prepared dataset (`prepare@<dataset>` output): x_* uint8 (N, H, W, C), y_* int64, class_names.

    `keys` limits what is read (an .npz member is only decompressed when asked for)."""
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in PREPARED_KEYS if k not in f.files]
        if missing:
            raise ValueError(f"{path}: not a prepared dataset, missing arrays {missing}")
        data = {k: f[k] for k in keys}
    for split in ("train", "test"):
        if f"x_{split}" not in data:
            continue
        x = data[f"x_{split}"]
        if x.dtype != np.uint8 or x.ndim != 4:
            raise ValueError(f"{path}: x_{split} must be uint8 (N, H, W, C), got {x.dtype} {x.shape}")
    return data
