"""Read samples made anywhere (a folder of image files, an `.npz`, an `.npy`) into the project's pixel
convention: uint8 (N, H, W, C) in [0, 255] (`ganlab.data.arrays`), checked against a dataset's (H, W, C).

What is accepted, exactly:

Folder
    Every non-hidden entry (hidden = name starts with ".") must be a `.png`, `.jpg` or `.jpeg` file (any case);
    anything else (other files, sub-folders, unreadable or truncated images) is an error naming the entries.
    Files are read in sorted order of their names (byte order, so `000.png < 001.png < 010.png`; pad your
    numbers). Image modes: `L` (8-bit grey) and `RGB`; `RGBA`/`LA` only when fully opaque (alpha 255
    everywhere); palette (`P`) and bilevel (`1`) images are expanded to RGB / L first. 16-bit and float images
    (`I;16`, `I`, `F`) are refused (no silent rescaling). For a 1-channel dataset an RGB image is accepted
    only when R == G == B in every pixel (what `torchvision.utils.save_image` writes for grey tensors); for
    a 3-channel dataset a grey image is refused. All images must have the same size.

`.npz`
    The array under key `images`, else the only array in the file (several arrays and no `images` -> error
    listing the keys). Read with `allow_pickle=False`. Then as `.npy`.

`.npy` (and the array of an `.npz`)
    Shape (N, H, W) (one channel) or (N, H, W, C), channels LAST. An array that looks channels-first
    ((N, C, H, W) with C in {1, 3}) is refused with the transpose that fixes it.
    dtype:
      - any integer dtype with every value in [0, 255]: the pixel values themselves;
      - bool: refused;
      - float (16/32/64): every value finite, and a known range:
          `pixel_range="symmetric"`: [-1, 1] (tanh outputs; the pipeline's model space),
          `pixel_range="unit"`: [0, 1],
          `pixel_range=None` (auto): [-1, 1] when some value is < 0; values all in [0, 1] are AMBIGUOUS
          (a [0, 1] image or a [-1, 1] image without negative pixels) and refused unless a range is given;
          values > 1 are refused (floats in [0, 255]: convert to uint8 first).
        A tolerance of 1e-6 is allowed at the ends of the range (values are then clipped). Conversion is
        the pipeline's own `to_uint8`: round((x + 1) * 127.5) for [-1, 1], the same after x -> 2x - 1 for
        [0, 1].

Every failure raises `BadInputError` (`ganlab.runtime`) with one line naming the file and the problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ganlab.data.arrays import to_uint8
from ganlab.runtime import BadInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PIXEL_RANGES = ("unit", "symmetric")  # [0, 1] and [-1, 1]
RANGE_TOLERANCE = 1e-6


def read_samples(path: str | Path, image_shape: tuple[int, int, int], *, pixel_range: str | None = None) -> np.ndarray:
    """Samples at `path` (folder, .npz or .npy) -> uint8 (N, H, W, C) with (H, W, C) == `image_shape`.

    `pixel_range` (None, "unit" or "symmetric") applies to float arrays only; see the module docstring.
    Raises BadInputError for anything else.
    """
    path = Path(path)
    if pixel_range is not None and pixel_range not in PIXEL_RANGES:
        raise BadInputError(f"pixel range: unknown {pixel_range!r}; allowed: {', '.join(PIXEL_RANGES)}")
    if not path.exists():
        raise BadInputError(f"{path}: no such file or folder")
    if path.is_dir():
        if pixel_range is not None:
            raise BadInputError(f"{path}: --pixel-range applies to float arrays, not to image files (8-bit)")
        images = read_image_folder(path, channels=image_shape[2])
    elif path.suffix.lower() in (".npz", ".npy"):
        images = array_to_uint8(read_array(path), source=str(path), pixel_range=pixel_range)
    else:
        raise BadInputError(f"{path}: expected a folder of PNG/JPEG images, an .npz or an .npy file")
    check_shape(images, image_shape, source=str(path))
    return images


# ----------------------------------------------------------------------------------------------------
# Folders of image files


def read_image_folder(folder: Path, *, channels: int) -> np.ndarray:
    """A folder of PNG/JPEG files (sorted by name) -> uint8 (N, H, W, channels); see the module docstring."""
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    not_images = [p.name + ("/" if p.is_dir() else "") for p in entries
                  if p.is_dir() or p.suffix.lower() not in IMAGE_SUFFIXES]  # fmt: skip
    if not_images:
        raise BadInputError(
            f"{folder}: not PNG/JPEG image files: {_listing(not_images)} (a samples folder must hold only "
            f"{'/'.join(IMAGE_SUFFIXES)} files)"
        )
    if not entries:
        raise BadInputError(f"{folder}: the folder holds no images")
    images = [read_image_file(p, channels=channels) for p in entries]
    first = images[0].shape
    for p, image in zip(entries, images):
        if image.shape != first:
            raise BadInputError(
                f"{folder}: images of mixed sizes: {entries[0].name} is {_hwc(first)}, {p.name} is {_hwc(image.shape)}"
            )
    return np.stack(images)


def read_image_file(path: Path, *, channels: int) -> np.ndarray:
    """One 8-bit image file -> uint8 (H, W, channels); refuses what cannot be converted losslessly."""
    try:
        with Image.open(path) as im:
            im.load()
            image = im.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise BadInputError(f"{path}: unreadable or not an image ({type(e).__name__}: {e})") from None
    if image.mode == "P":
        image = image.convert("RGBA")
    elif image.mode == "1":
        image = image.convert("L")
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        raise BadInputError(f"{path}: image mode {image.mode!r} is not 8-bit grey or RGB (16-bit/float images are refused)")
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]  # (H, W) -> (H, W, 1)
    if image.mode in ("LA", "RGBA"):
        if (array[..., -1] != 255).any():
            raise BadInputError(f"{path}: the image has transparent pixels (alpha < 255); save it without alpha")
        array = array[..., :-1]
    if channels == 1 and array.shape[2] == 3:
        if not ((array[..., 0] == array[..., 1]) & (array[..., 1] == array[..., 2])).all():
            raise BadInputError(f"{path}: a colour image, but the dataset is grey (1 channel)")
        array = array[..., :1]
    elif channels == 3 and array.shape[2] == 1:
        raise BadInputError(f"{path}: a grey image, but the dataset has 3 colour channels")
    return np.ascontiguousarray(array)


# ----------------------------------------------------------------------------------------------------
# Arrays


def read_array(path: Path) -> np.ndarray:
    """The sample array of an .npy, or of an .npz (key `images`, else its only array)."""
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as f:
            keys = list(f.files)
            if "images" in keys:
                return f["images"]
            if len(keys) == 1:
                return f[keys[0]]
    except (ValueError, OSError, EOFError) as e:
        # object arrays need pickle (refused); anything else is a torn or foreign file
        raise BadInputError(f"{path}: cannot read the array ({type(e).__name__}: {e})") from None
    if not keys:
        raise BadInputError(f"{path}: the .npz holds no arrays")
    raise BadInputError(f"{path}: no array named 'images' and several arrays to choose from: {keys}")


def array_to_uint8(array: np.ndarray, *, source: str, pixel_range: str | None = None) -> np.ndarray:
    """An (N, H, W) / (N, H, W, C) integer or float array -> uint8 (N, H, W, C); see the module docstring."""
    if array.ndim == 3:
        array = array[..., None]  # (N, H, W) -> (N, H, W, 1)
    if array.ndim != 4:
        raise BadInputError(f"{source}: expected images of shape (N, H, W) or (N, H, W, C), got {array.shape}")
    n, h, w, c = array.shape
    if c not in (1, 3) and h in (1, 3):
        raise BadInputError(
            f"{source}: shape {array.shape} looks channels-first (N, C, H, W); channels must be last: "
            "np.transpose(x, (0, 2, 3, 1))"
        )
    if n == 0:
        raise BadInputError(f"{source}: the array holds no images (shape {array.shape})")
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise BadInputError(f"{source}: dtype {array.dtype} is not an integer or float pixel type")
    if np.issubdtype(array.dtype, np.integer):
        if pixel_range is not None:
            raise BadInputError(f"{source}: --pixel-range applies to float arrays; this array is {array.dtype} (0..255)")
        lo, hi = int(array.min()), int(array.max())
        if lo < 0 or hi > 255:
            raise BadInputError(f"{source}: integer pixel values must lie in [0, 255], found [{lo}, {hi}]")
        return np.ascontiguousarray(array.astype(np.uint8))
    return float_to_uint8(array, source=source, pixel_range=pixel_range)


def float_to_uint8(array: np.ndarray, *, source: str, pixel_range: str | None) -> np.ndarray:
    """float (N, H, W, C) in [0, 1] or [-1, 1] -> uint8 (N, H, W, C) with the pipeline's `to_uint8`."""
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.argwhere(~finite.reshape(len(array), -1).all(axis=1)).ravel()
        raise BadInputError(
            f"{source}: {int((~finite).sum())} NaN/Inf values in {len(bad)} images (first: image {int(bad[0])})"
        )
    lo, hi = float(array.min()), float(array.max())
    if pixel_range is None:
        if hi > 1 + RANGE_TOLERANCE:
            raise BadInputError(
                f"{source}: float values up to {hi:.6g} are outside [0, 1] and [-1, 1] "
                "(floats in [0, 255]? save them as uint8)"
            )
        if lo >= 0:
            raise BadInputError(
                f"{source}: float values all lie in [0, 1] ([{lo:.6g}, {hi:.6g}]), which is ambiguous: "
                "pass --pixel-range unit for [0, 1] images or --pixel-range symmetric for [-1, 1] images"
            )
        pixel_range = "symmetric"
    low = -1.0 if pixel_range == "symmetric" else 0.0
    if lo < low - RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        name = "[-1, 1]" if pixel_range == "symmetric" else "[0, 1]"
        raise BadInputError(f"{source}: float values [{lo:.6g}, {hi:.6g}] are outside the stated range {name}")
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    if pixel_range == "unit":
        x = x * 2.0 - 1.0  # [0, 1] -> [-1, 1], then the one conversion the pipeline uses
    return to_uint8(x.permute(0, 3, 1, 2)).numpy()  # (N, C, H, W) -> uint8 (N, H, W, C)


def check_shape(images: np.ndarray, image_shape: tuple[int, int, int], *, source: str) -> None:
    if tuple(images.shape[1:]) != tuple(image_shape):
        raise BadInputError(
            f"{source}: images are {_hwc(images.shape[1:])} (H x W x C), the dataset needs {_hwc(image_shape)}"
        )


def _hwc(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
