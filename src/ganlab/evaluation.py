"""Score generated images against the real test set in a feature space (catalogue §E): FID and
precision / recall / density / coverage (Naeem et al. 2020, k = 5 by default)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ganlab.features import FeatureNet, embed
from ganlab.metrics import compute_prdc, feature_statistics, frechet_distance


def score(
    fake_images: np.ndarray,
    net: FeatureNet,
    reference: dict[str, np.ndarray],
    *,
    nearest_k: int,
    device: torch.device,
) -> dict[str, Any]:
    """fake uint8 (N, H, W, C) vs the cached real `reference` (features, mu, sigma) -> metrics dict."""
    if not np.issubdtype(fake_images.dtype, np.uint8):
        raise TypeError(f"expected uint8 images, got {fake_images.dtype}")
    fake_features = embed(net, fake_images, device=device)
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
