"""AFHQ v1 (StarGAN v2, clovaai): animal faces, classes cat / dog / wild, resized to 64x64 RGB (reference §B3).

Source: `afhq.zip` from the StarGAN v2 download script's Dropbox link (with `dl=1`, which answers the
file instead of a web page); layout `afhq/{train,val}/{cat,dog,wild}/*.jpg`, 512x512 JPEGs, about
16,130 images (val: 500 per class). No checksum is published: the archive's sha256 is recorded in
data/acquired_checksums.json on first acquisition and checked afterwards. Alternative (documented,
not a mirror, since its bytes differ): the Hugging Face dataset `huggan/AFHQv2` holds the v2 release
(Lanczos-resized PNGs, 15,803 images); convert it to the v1 layout and place it as manual_dir/afhq.zip
if the Dropbox link is down (clovaai/stargan-v2#167) -- the recorded sha256 then names that file.

Decoding: members are read from the zip in memory (nothing extracted), in sorted name order, each
decoded with PIL, converted to RGB and resized to 64x64 with `Image.Resampling.LANCZOS` (a
Lanczos-3 filter over the full 512 -> 64 reduction, no `reducing_gap` shortcut). train -> train,
val -> test; y = index in ("cat", "dog", "wild"). Licence: CC BY-NC 4.0.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ganlab.data.common import DataFormatError, DatasetSpec, FetchContext, acquire_file, file_provenance
from ganlab.data.download import RemoteFile

URL = "https://www.dropbox.com/s/t9l9o3vsx2jai3z/afhq.zip?dl=1"
CLASS_NAMES = ("cat", "dog", "wild")
IMAGE_SIZE = 64
RESAMPLE = Image.Resampling.LANCZOS
_MEMBER = re.compile(r"afhq/(train|val)/(cat|dog|wild)/[^/]+\.(?:jpe?g|png)", re.IGNORECASE)
_CHUNK_IMAGES = 256  # images decoded per batch: bounds the compressed bytes held in memory


def decode_image(blob: bytes, *, file: str, size: int = IMAGE_SIZE) -> np.ndarray:
    """Encoded image -> uint8 (size, size, 3), RGB, Lanczos-resized."""
    try:
        with Image.open(io.BytesIO(blob)) as img:
            img = img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataFormatError(file, f"not a decodable image: {exc}") from exc
    if img.size != (size, size):
        img = img.resize((size, size), resample=RESAMPLE)
    return np.asarray(img, dtype=np.uint8)


def decode_zip(archive: Path, *, size: int = IMAGE_SIZE) -> dict[str, np.ndarray]:
    """afhq.zip -> npz arrays (train from afhq/train, test from afhq/val). Errors name the archive or
    the member. Decoding runs on a thread pool (PIL releases the GIL); the order is the sorted names."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = sorted(n for n in zf.namelist() if _MEMBER.fullmatch(n))
            out: dict[str, list] = {"train": [], "val": []}
            labels: dict[str, list[int]] = {"train": [], "val": []}
            workers = max(1, min(8, os.cpu_count() or 1))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for start in range(0, len(names), _CHUNK_IMAGES):
                    chunk = names[start : start + _CHUNK_IMAGES]
                    blobs = [zf.read(n) for n in chunk]
                    member_labels = [f"{archive.name}:{n}" for n in chunk]
                    images = pool.map(lambda b, f: decode_image(b, file=f, size=size), blobs, member_labels)
                    for name, image in zip(chunk, images):
                        split, cls = _MEMBER.fullmatch(name).group(1, 2)
                        out[split.lower()].append(image)
                        labels[split.lower()].append(CLASS_NAMES.index(cls.lower()))
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise DataFormatError(archive, f"corrupt or truncated zip: {type(exc).__name__}: {exc}") from exc
    for split in ("train", "val"):
        if not out[split]:
            raise DataFormatError(archive, f"no images under afhq/{split}/{{cat,dog,wild}}/")
    return {
        "x_train": np.stack(out["train"]),
        "y_train": np.array(labels["train"], dtype=np.int64),
        "x_test": np.stack(out["val"]),
        "y_test": np.array(labels["val"], dtype=np.int64),
        "class_names": np.array(CLASS_NAMES),
    }


def fetch(spec: DatasetSpec, ctx: FetchContext) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    remote = spec.files["archive"]
    got, arrays = acquire_file(spec.name, remote, ctx, record_checksum=True, decode=decode_zip)
    provenance = {"dataset": spec.name, "source": got["url"], "files": [file_provenance(got, name=remote.name)]}
    provenance["resize"] = f"{IMAGE_SIZE}x{IMAGE_SIZE}, PIL Image.Resampling.LANCZOS, RGB"
    return arrays, provenance


SPEC = DatasetSpec(
    name="afhq",
    fetch=fetch,
    files={"archive": RemoteFile("afhq.zip", (URL,))},
    image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
    class_names=CLASS_NAMES,
    licence="CC BY-NC 4.0 (clovaai/stargan-v2)",
)
