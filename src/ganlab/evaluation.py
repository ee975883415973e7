"""Score generated images against the real test set in a feature space (catalogue §E): FID and
precision / recall / density / coverage (Naeem et al. 2020, k = 5 by default).

The same scores are computed in the domain network's space (keys `fid`, `precision`, ...) and in
Inception-v3 pool3 (keys `fid_inception`, `precision_inception`, ...). Where the Inception weights are not
available, each Inception key holds the string `"unavailable: <reason>"`, never a number.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganlab.features import FeatureSpace
from ganlab.inception import FEATURE_SPACE as INCEPTION_FEATURE_SPACE
from ganlab.inception import FID_WEIGHTS_SHA256_PREFIX, unavailable
from ganlab.metrics import compute_prdc, feature_statistics, frechet_distance

METRICS = ("fid", "precision", "recall", "density", "coverage")
INCEPTION_SUFFIX = "_inception"


def score(
    fake_images: np.ndarray,
    net: FeatureSpace,
    reference: dict[str, np.ndarray],
    *,
    nearest_k: int,
    device: torch.device,
) -> dict[str, Any]:
    """fake uint8 (N, H, W, C) vs the cached real `reference` (features, mu, sigma) in the feature space
    `net` (a domain FeatureNet or the InceptionSpace) -> {"fid", "precision", "recall", "density", "coverage"}."""
    if not np.issubdtype(fake_images.dtype, np.uint8):
        raise TypeError(f"expected uint8 images, got {fake_images.dtype}")
    fake_features = net.embed(fake_images, device=device)
    if not np.isfinite(fake_features).all():
        raise ValueError("non-finite features from the generated images")
    if len(fake_features) <= fake_features.shape[1]:
        warnings.warn(
            f"N fake = {len(fake_features)} <= feature dim {fake_features.shape[1]}: the covariance is singular "
            "and FID is biased upwards; use more samples",
            stacklevel=2,
        )
    mu, sigma = feature_statistics(fake_features)
    fid = frechet_distance(mu, sigma, reference["mu"], reference["sigma"])
    prdc = compute_prdc(reference["features"], fake_features, nearest_k=nearest_k)
    return {"fid": float(fid), **{k: float(v) for k, v in prdc.items()}}


def inception_scores(metrics: dict[str, float]) -> dict[str, float]:
    """{"fid": x, ...} from `score` in the Inception space -> {"fid_inception": x, ...}."""
    return {f"{k}{INCEPTION_SUFFIX}": v for k, v in metrics.items()}


def unavailable_inception_scores(reason: str) -> dict[str, str]:
    """Every Inception key set to "unavailable: <reason>"."""
    return {f"{k}{INCEPTION_SUFFIX}": unavailable(reason) for k in METRICS}


def evaluation_protocol(
    space: FeatureSpace,
    reference: dict[str, Any],
    *,
    n_fake: int,
    nearest_k: int,
    seed: int | None = None,
    inception: tuple[FeatureSpace, dict[str, Any]] | str | None = None,
    dataset: str | None = None,
    reference_file: str | Path | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `protocol` record of a metrics file: how its scores were made, in this key order ([...]: only when given)

        [dataset], feature_space, feature_weights_sha256, reference_key, [reference],
        [inception_feature_space, inception_weights_sha256, [inception_weights_verification, inception_reference_key]],
        real_split, n_real, n_fake, nearest_k, [seed], **provenance

    `space` and `reference`: the feature space of the scores and the real statistics they were compared with
    (`features.load_reference`: the first n test images, N real = its `n`); `reference_file`: that file's path.
    `inception`: the Inception space and reference of the record's `*_inception` scores, or the reason they are
    unavailable (a string: weights hash None); None = the record has no Inception scores. `seed`: the evaluation
    seed of the samples. `provenance`: where the samples come from (checkpoint, training seed, scale, the params
    file), appended in the caller's order."""
    protocol: dict[str, Any] = {} if dataset is None else {"dataset": dataset}
    protocol |= {
        "feature_space": space.name,
        "feature_weights_sha256": space.weights_sha256,
        "reference_key": str(reference["key"]),
    }
    if reference_file is not None:
        protocol["reference"] = str(reference_file)
    if inception is not None:
        protocol["inception_feature_space"] = INCEPTION_FEATURE_SPACE
        if isinstance(inception, str):
            protocol["inception_weights_sha256"] = None
        else:
            inception_space, inception_reference = inception
            protocol |= {
                "inception_weights_sha256": inception_space.weights_sha256,
                "inception_weights_verification": f"sha256 prefix {FID_WEIGHTS_SHA256_PREFIX} + recorded full hash",
                "inception_reference_key": str(inception_reference["key"]),
            }
    protocol |= {"real_split": "test", "n_real": int(reference["n"]), "n_fake": int(n_fake), "nearest_k": nearest_k}
    if seed is not None:
        protocol["seed"] = seed
    return protocol | (provenance or {})
