"""The sanity battery of a domain feature space: fixed image sets whose scores we know before we look.

A feature space is only worth its FIDs if it ranks obvious failures as failures. The battery scores, against
the reference of the first n test images, sets built from the real data with explicit seeds:

    set                   kind        what a trustworthy space must say
    real_train            real        the baseline: lowest FID, highest recall, precision and recall near 1
    half_classes          subset      recall and coverage about halved (classes 0 .. K/2 - 1 only)
    one_image             collapse    recall and coverage near 0 (one image n times: total mode collapse)
    uniform_noise         noise       precision and density near 0, FID far above real_train's
    gaussian_grey_noise   noise       the same
    salt_and_pepper       noise       the same
    shuffled_pixels       noise       the same: a real image's pixels, no structure left
    blurred               corruption  FID far above real_train's
    inverted              corruption  FID far above real_train's

`battery_checks` turns the bars of issue 15 into booleans. Every set has N images, uint8 (N, H, W, C), of the
dataset's shape (any C and size); sets built from test images use only the held-out ones (not among the
reference's first n), so that no set contains a reference image. A set that the data cannot give (no labels,
too few held-out images) is skipped with its reason, never scored on something else.

Randomness: each set draws from its own generator seeded by (seed, the set's name), so adding a set or
building one alone never changes another.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from ganlab.features import FeatureSpace, compute_reference, reference_key
from ganlab.metrics import SingularCovarianceWarning
from ganlab.scoring import score

BLUR_SIGMA_PX = 1.5  # Gaussian blur of `blurred`, in pixels of the image (at 28 px: strokes smeared, digits legible)
GREY_MEAN, GREY_SD = 128.0, 30.0  # `gaussian_grey_noise`, in uint8 levels
SALT_FRACTION = 0.10  # `salt_and_pepper`: white pixels on black

# The bars of issue 15 (item 5), checked by `battery_checks`.
NOISE_MAX_PRECISION = 0.2
NOISE_MAX_DENSITY = 0.2
CORRUPTION_MIN_FID_RATIO = 10.0  # FID of every noise or corruption set >= this x FID(real_train)
HALF_CLASSES_COVERAGE_RATIO = (0.4, 0.65)  # coverage(half_classes) / coverage(real_train)


class SetUnavailable(Exception):
    """The data cannot give this set (e.g. no labels); the message says why."""


@dataclass(frozen=True)
class RealImages:
    """What the battery is built from: the dataset's uint8 (N, H, W, C) splits; the first `n` test images are
    the reference, the rest are held out. `test_labels` is None (or negative) for an unlabelled dataset."""

    train: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray | None
    n: int

    @property
    def held_out(self) -> np.ndarray:
        return self.test[self.n :]

    def held_out_sample(self, rng: np.random.Generator) -> np.ndarray:
        """n held-out test images drawn without replacement."""
        held_out = self.held_out
        if len(held_out) < self.n:
            raise SetUnavailable(f"needs {self.n} held-out test images, the test split has {len(held_out)} beyond "
                                 f"the reference's first {self.n}")  # fmt: skip
        return held_out[np.sort(rng.choice(len(held_out), self.n, replace=False))]

    def noise_shape(self, channels: int | None = None) -> tuple[int, int, int, int]:
        _, h, w, c = self.test.shape
        return (self.n, h, w, channels or c)


# ----------------------------------------------------------------------------------------------------
# The sets: (RealImages, rng) -> uint8 (n, H, W, C)


def _real_train(real: RealImages, rng: np.random.Generator) -> np.ndarray:
    if len(real.train) < real.n:
        raise SetUnavailable(f"needs {real.n} train images, the train split has {len(real.train)}")
    return real.train[np.sort(rng.choice(len(real.train), real.n, replace=False))]


def _half_classes(real: RealImages, rng: np.random.Generator) -> np.ndarray:
    labels = real.test_labels
    if labels is None or labels.min() < 0:
        raise SetUnavailable("the dataset has no labels")
    num_classes = int(labels.max()) + 1
    lower = np.flatnonzero(labels[real.n :] < num_classes // 2)  # indices into the held-out images
    if len(lower) < real.n:
        raise SetUnavailable(f"needs {real.n} held-out test images of classes 0..{num_classes // 2 - 1}, "
                             f"the test split has {len(lower)}")  # fmt: skip
    return real.held_out[np.sort(rng.choice(lower, real.n, replace=False))]


def _one_image(real: RealImages, rng: np.random.Generator) -> np.ndarray:
    held_out = real.held_out
    if len(held_out) == 0:
        raise SetUnavailable(f"no held-out test image: the test split has only the reference's {real.n}")
    image = held_out[rng.integers(len(held_out))]
    return np.repeat(image[None], real.n, axis=0)


def _uniform_noise(real: RealImages, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, real.noise_shape(), dtype=np.uint8)  # every channel independent


def _gaussian_grey_noise(real: RealImages, rng: np.random.Generator) -> np.ndarray:
    grey = rng.normal(GREY_MEAN, GREY_SD, real.noise_shape(channels=1))  # one grey level per pixel
    grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return np.repeat(grey, real.test.shape[3], axis=3)


def _salt_and_pepper(real: RealImages, rng: np.random.Generator) -> np.ndarray:
    salt = rng.random(real.noise_shape(channels=1)) < SALT_FRACTION
    return np.repeat(salt.astype(np.uint8) * 255, real.test.shape[3], axis=3)


def _shuffled_pixels(real: RealImages, rng: np.random.Generator) -> np.ndarray:
    images = real.held_out_sample(rng)
    n, h, w, c = images.shape
    pixels = images.reshape(n, h * w, c)
    order = np.argsort(rng.random((n, h * w)), axis=1)  # one permutation per image; a pixel keeps its colour
    return np.take_along_axis(pixels, order[:, :, None], axis=1).reshape(n, h, w, c)


def _blurred(real: RealImages, rng: np.random.Generator) -> np.ndarray:
    images = real.held_out_sample(rng).astype(np.float64)
    blurred = gaussian_filter(images, sigma=(0, BLUR_SIGMA_PX, BLUR_SIGMA_PX, 0), mode="reflect", truncate=4.0)
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


def _inverted(real: RealImages, rng: np.random.Generator) -> np.ndarray:
    return 255 - real.held_out_sample(rng)


@dataclass(frozen=True)
class BatterySet:
    build: Callable[[RealImages, np.random.Generator], np.ndarray]
    kind: str  # "real", "subset", "collapse", "noise" or "corruption": what `battery_checks` asks of it
    description: str  # one line, into the metrics file's protocol


BATTERY: dict[str, BatterySet] = {
    "real_train": BatterySet(_real_train, "real", "n train images without replacement: the real-vs-real baseline"),
    "half_classes": BatterySet(
        _half_classes, "subset", "n held-out test images of the lower half of the classes (0 .. K/2 - 1) only"
    ),
    "one_image": BatterySet(_one_image, "collapse", "one held-out test image repeated n times"),
    "uniform_noise": BatterySet(_uniform_noise, "noise", "i.i.d. uniform uint8 noise, every channel independent"),
    "gaussian_grey_noise": BatterySet(
        _gaussian_grey_noise, "noise", f"grey i.i.d. Gaussian noise, mean {GREY_MEAN:g}, sd {GREY_SD:g}, clipped"
    ),
    "salt_and_pepper": BatterySet(
        _salt_and_pepper, "noise", f"{SALT_FRACTION:.0%} of the pixels white (i.i.d.), the rest black"
    ),
    "shuffled_pixels": BatterySet(
        _shuffled_pixels, "noise", "held-out test images, each with its pixel positions shuffled (histogram kept)"
    ),
    "blurred": BatterySet(
        _blurred, "corruption", f"held-out test images, Gaussian blur sigma {BLUR_SIGMA_PX:g} px (reflect edges)"
    ),
    "inverted": BatterySet(_inverted, "corruption", "held-out test images, inverted (255 - x)"),
}


def _set_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def build_battery(real: RealImages, *, seed: int) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every set of BATTERY that the data can give -> (images {name: uint8 (n, H, W, C)}, skipped {name: reason}).
    Same data and seed -> the same images."""
    sets, skipped = {}, {}
    for name, entry in BATTERY.items():
        try:
            sets[name] = entry.build(real, _set_rng(seed, name))
        except SetUnavailable as exc:
            skipped[name] = str(exc)
    return sets, skipped


# ----------------------------------------------------------------------------------------------------
# Scoring and the bars


def score_battery(
    net: FeatureSpace,
    reference: dict[str, np.ndarray],
    images_train: np.ndarray,
    images_test: np.ndarray,
    labels_test: np.ndarray | None,
    *,
    n: int,
    seed: int,
    nearest_k: int,
    device: torch.device,
    kid: bool = False,
) -> dict[str, dict[str, float]]:
    """{set name: {fid, precision, recall, density, coverage (, kid, kid_std)}} for every set the data can give
    (`build_battery`), each against `reference`, which must be `ganlab.features.compute_reference(net,
    images_test[:n])` (checked by its content key). `kid=True` adds KID (about 2 s a set at n = 2000)."""
    if reference_key(images_test[:n], net) != str(reference["key"]):
        raise ValueError(f"the battery's reference must be the first {n} test images in {net.name}; "
                         f"its key {reference['key']} is not theirs")  # fmt: skip
    sets, _ = build_battery(RealImages(images_train, images_test, labels_test, n), seed=seed)
    return _score_sets(sets, net, reference, nearest_k=nearest_k, device=device, kid=kid)


def _score_sets(sets, net, reference, *, nearest_k, device, kid) -> dict[str, dict[str, float]]:
    scores = {}
    for name, images in sets.items():
        with warnings.catch_warnings():
            if BATTERY[name].kind == "collapse":  # n copies of one image: a zero covariance is the point
                warnings.simplefilter("ignore", SingularCovarianceWarning)
            scores[name] = score(images, net, reference, nearest_k=nearest_k, device=device, kid=kid)
    return scores


def battery_record(
    net: FeatureSpace,
    images_train: np.ndarray,
    images_test: np.ndarray,
    labels_test: np.ndarray | None,
    *,
    n: int,
    seed: int,
    nearest_k: int,
    device: torch.device,
) -> dict[str, Any]:
    """The battery's entries of the features stage's metrics file: {"battery": score_battery's result,
    "battery_protocol": what they mean, "battery_checks": the bars}. The reference is the first n test images,
    n = min(`n`, half the test split) so that every set built from test images has n held-out ones to draw."""
    n = min(n, len(images_test) // 2)
    sets, skipped = build_battery(RealImages(images_train, images_test, labels_test, n), seed=seed)
    reference = compute_reference(net, images_test[:n], device=device)
    scores = _score_sets(sets, net, reference, nearest_k=nearest_k, device=device, kid=False)
    return {
        "battery": scores,
        "battery_protocol": battery_protocol(n=n, seed=seed, nearest_k=nearest_k, skipped=skipped),
        "battery_checks": battery_checks(scores),
    }


def battery_checks(scores: dict[str, dict[str, float]]) -> dict[str, bool]:
    """The bars of issue 15 on `score_battery`'s result; a bar whose sets were not scored is left out."""
    names = lambda *kinds: [s for s in scores if BATTERY[s].kind in kinds]  # noqa: E731
    checks = {}
    if noise := names("noise"):
        checks[f"noise_precision_at_most_{NOISE_MAX_PRECISION:g}"] = all(
            scores[s]["precision"] <= NOISE_MAX_PRECISION for s in noise
        )
        checks[f"noise_density_at_most_{NOISE_MAX_DENSITY:g}"] = all(
            scores[s]["density"] <= NOISE_MAX_DENSITY for s in noise
        )
    if "real_train" in scores and (bad := names("noise", "corruption")):
        floor = CORRUPTION_MIN_FID_RATIO * scores["real_train"]["fid"]
        checks[f"noise_and_corruption_fid_at_least_{CORRUPTION_MIN_FID_RATIO:g}x_real_train"] = all(
            scores[s]["fid"] >= floor for s in bad
        )
    if "real_train" in scores and "half_classes" in scores:
        low, high = HALF_CLASSES_COVERAGE_RATIO
        ratio = scores["half_classes"]["coverage"] / scores["real_train"]["coverage"]
        checks[f"half_classes_coverage_{low:g}_to_{high:g}_of_real_train"] = bool(low <= ratio <= high)
    return checks


def battery_protocol(*, n: int, seed: int, nearest_k: int, skipped: dict[str, str]) -> dict[str, Any]:
    """What the battery's numbers mean, for the metrics file."""
    return {
        "n": n,
        "seed": seed,
        "nearest_k": nearest_k,
        "reference": "first n test images",
        "sets": {name: entry.description for name, entry in BATTERY.items()},
        "kinds": {name: entry.kind for name, entry in BATTERY.items()},  # what battery_checks asks of each set
        "skipped": skipped,
    }
