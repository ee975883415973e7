"""CIFAR-10, python version: 32x32 RGB, 50,000 train / 10,000 test, 10 classes (reference §B2).

Source: `cifar-10-python.tar.gz` (A. Krizhevsky), md5 of the archive and of each batch file as in
torchvision/datasets/cifar.py. The archive is read in memory, member by member -- nothing is
extracted to disk, so a crafted member path cannot escape anywhere; such a path is refused anyway.
Each batch is a Python-2 pickle of a dict {data: uint8 (10000, 3072) as R, G, B planes of 32x32,
labels: list of int, ...}, loaded with the restricted unpickler (numpy arrays only); `batches.meta`
holds `label_names`. Output: x uint8 (N, 32, 32, 3) (planes -> HWC), y int64 in [0, 10).
No licence is stated on the Toronto page.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ganlab.data.common import (
    DataFormatError,
    DatasetSpec,
    FetchContext,
    acquire_file,
    file_provenance,
    restricted_load,
)
from ganlab.data.download import RemoteFile, check_hashes

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
BASE_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
MEMBER_MD5 = {  # torchvision/datasets/cifar.py
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_members(archive: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The bytes of `BASE_FOLDER/<name>` for each name, read from the tar.gz in memory. Refuses
    absolute or '..' member paths; errors name the archive (truncated/corrupt) or the missing member."""
    wanted = {f"{BASE_FOLDER}/{n}": n for n in names}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                path = PurePosixPath(member.name)
                if path.is_absolute() or ".." in path.parts:
                    raise DataFormatError(archive, f"unsafe member path {member.name!r}")
                if member.name in wanted and member.isfile():
                    found[wanted[member.name]] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataFormatError(archive, f"corrupt or truncated tar.gz: {type(exc).__name__}: {exc}") from exc
    missing = [n for n in names if n not in found]
    if missing:
        raise DataFormatError(archive, f"missing members {[f'{BASE_FOLDER}/{n}' for n in missing]}")
    return found


def decode_batch(blob: bytes, *, file: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch pickle -> (uint8 (N, 32, 32, 3), int64 (N,))."""
    batch = restricted_load(io.BytesIO(blob), file=file)
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise DataFormatError(file, "expected a dict with 'data' and 'labels'")
    data, labels = batch["data"], np.asarray(batch["labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{getattr(data, 'dtype', type(data).__name__)} {np.shape(data)}"
        raise DataFormatError(file, f"'data' must be uint8 (N, 3072), got {got}")
    in_range = labels.size == 0 or 0 <= labels.min() <= labels.max() <= 9
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu" or not in_range:
        raise DataFormatError(file, f"'labels' must be {len(data)} ints in 0..9, got {labels.dtype} {labels.shape}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # R, G, B planes -> (N, 32, 32, 3)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def decode_archive(archive: Path, member_md5: dict[str, str | None]) -> dict[str, np.ndarray]:
    """cifar-10-python.tar.gz -> npz arrays, each member md5-checked against `member_md5` (if given)."""
    blobs = read_members(archive, (*TRAIN_BATCHES, TEST_BATCH, META))
    for name, blob in blobs.items():
        digest = {"md5": hashlib.md5(blob, usedforsecurity=False).hexdigest()}
        check_hashes(f"{archive.name}:{BASE_FOLDER}/{name}", digest, md5=member_md5.get(name), sha256=None)
    label = f"{archive.name}:{BASE_FOLDER}/"
    train = [decode_batch(blobs[n], file=label + n) for n in TRAIN_BATCHES]
    x_test, y_test = decode_batch(blobs[TEST_BATCH], file=label + TEST_BATCH)
    meta = restricted_load(io.BytesIO(blobs[META]), file=label + META)
    names = meta.get("label_names") if isinstance(meta, dict) else None
    if not (isinstance(names, list) and len(names) == 10 and all(isinstance(n, str) for n in names)):
        raise DataFormatError(label + META, "expected a dict with 'label_names': 10 strings")
    return {
        "x_train": np.concatenate([x for x, _ in train]),
        "y_train": np.concatenate([y for _, y in train]),
        "x_test": x_test,
        "y_test": y_test,
        "class_names": np.array(names),
    }


def fetch(spec: DatasetSpec, ctx: FetchContext) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    remote = spec.files["archive"]
    member_md5 = {name: digest for name, (algo, digest) in spec.member_hashes.items() if algo == "md5"}
    got, arrays = acquire_file(
        spec.name, remote, ctx, record_checksum=False, decode=lambda path: decode_archive(path, member_md5)
    )
    files = [file_provenance(got, name=remote.name)]
    for name, digest in member_md5.items():
        files.append({"name": f"{remote.name}:{BASE_FOLDER}/{name}", "md5": digest, "verified": ["md5"]})
    return arrays, {"dataset": spec.name, "source": got["url"], "files": files}


SPEC = DatasetSpec(
    name="cifar10",
    fetch=fetch,
    files={"archive": RemoteFile("cifar-10-python.tar.gz", (URL,), md5="c58f30108f718f92721af3b95e74349a")},
    image_shape=(32, 32, 3),
    class_names=CLASS_NAMES,
    member_hashes={name: ("md5", digest) for name, digest in MEMBER_MD5.items()},
    licence="none stated (A. Krizhevsky, 2009)",
    train_size=50_000,
)
