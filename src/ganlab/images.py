"""Image files: sample grids as PNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from ganlab.io import atomic_path


def grid(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 (N, H, W, C) -> one uint8 (rows*(H+pad)+pad, nrow*(W+pad)+pad, C) mosaic, row-major."""
    n, h, w, c = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    out = np.zeros((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), dtype=np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        out[top : top + h, left : left + w] = image
    return out


def save_grid(images: np.ndarray, path: str | Path, nrow: int | None = None, scale: int = 2) -> Path:
    """Save uint8 (N, H, W, C) images as a PNG grid, upscaled `scale`x with nearest neighbour for viewing."""
    mosaic = grid(np.asarray(images), nrow)
    mode = "L" if mosaic.shape[2] == 1 else "RGB"
    image = Image.fromarray(mosaic[..., 0] if mode == "L" else mosaic, mode=mode)
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:  # a kill mid-write must not leave a torn grid
        image.save(tmp, format="PNG")
    return path
