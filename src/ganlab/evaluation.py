"""Score generated images against the real test set in a feature space (catalogue §E): FID and
precision / recall / density / coverage (Naeem et al. 2020, k = 5 by default).

The same scores are computed in the domain network's space (keys `fid`, `precision`, ...) and in
Inception-v3 pool3 (keys `fid_inception`, `precision_inception`, ...). Where the Inception weights are not
available, each Inception key holds the string `"unavailable: <reason>"`, never a number.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ganlab.features import FeatureSpace
from ganlab.inception import unavailable
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
