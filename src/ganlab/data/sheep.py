"""QuickDraw "sheep": all simplified drawings of the category as 28x28 grayscale bitmaps (reference §B4).

Source: googlecreativelab/quickdraw-dataset, `full/numpy_bitmap/sheep.npy` -- one .npy of shape
(N, 784) uint8 (ink = high values), loaded with `np.load(allow_pickle=False)`. A browser saves it as
`full_numpy_bitmap_sheep.npy`; both names are accepted in manual_dir. No checksum is published: the
sha256 is recorded in data/acquired_checksums.json on first acquisition and checked afterwards.

Unlabeled and unsplit: fetch puts all N drawings in x_train (uint8 (N, 28, 28, 1), y = -1, no class
names) and leaves x_test empty; prepare draws a seeded 90/10 train/test split (`default_test_fraction`).
Licence: CC BY 4.0 (Google).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganlab.data.common import DataFormatError, DatasetSpec, FetchContext, acquire_file, file_provenance
from ganlab.data.download import RemoteFile

URL = "https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap/sheep.npy"


def decode_bitmap(path: Path) -> dict[str, np.ndarray]:
    """sheep.npy -> npz arrays (all samples in x_train). Errors name the file and the problem."""
    try:
        bitmaps = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFormatError(path, f"not a readable .npy without pickles (truncated?): {exc}") from exc
    if not isinstance(bitmaps, np.ndarray):
        raise DataFormatError(path, f"expected a single .npy array, got {type(bitmaps).__name__}")
    if bitmaps.dtype != np.uint8 or bitmaps.ndim != 2 or bitmaps.shape[1] != 784 or len(bitmaps) == 0:
        raise DataFormatError(path, f"expected uint8 (N, 784) bitmaps, got {bitmaps.dtype} {bitmaps.shape}")
    x = bitmaps.reshape(-1, 28, 28, 1)
    return {
        "x_train": x,
        "y_train": np.full(len(x), -1, dtype=np.int64),
        "x_test": np.zeros((0, 28, 28, 1), dtype=np.uint8),
        "y_test": np.zeros(0, dtype=np.int64),
        "class_names": np.array([], dtype=str),
    }


def fetch(spec: DatasetSpec, ctx: FetchContext) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    remote = spec.files["bitmap"]
    got, arrays = acquire_file(spec.name, remote, ctx, record_checksum=True, decode=decode_bitmap)
    return arrays, {"dataset": spec.name, "source": got["url"], "files": [file_provenance(got, name=remote.name)]}


SPEC = DatasetSpec(
    name="sheep",
    fetch=fetch,
    files={"bitmap": RemoteFile("sheep.npy", (URL,), alt_names=("full_numpy_bitmap_sheep.npy",))},
    image_shape=(28, 28, 1),
    class_names=(),
    split="seeded",
    default_test_fraction=0.1,
    licence="CC BY 4.0 (Google, QuickDraw)",
)
