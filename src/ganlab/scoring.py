"""Score generated images against real ones in a feature space (catalogue §E): FID, KID (Binkowski et al. 2018:
mean and sample std over 100 subsets of min(1000, N real, N fake)) and precision / recall / density / coverage
(Naeem et al. 2020, k = 5 by default).

`score` is the one scoring function: the evaluate and sweep stages, the `ganlab score` CLI and the learning curves
of the train stage call it (the evaluation record around it lives in `ganlab.evaluation`). It imports neither
the Inception network nor any GAN code, so the train stage can score its learning curves without depending on them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ganlab.features import FeatureSpace
from ganlab.metrics import compute_kid, compute_prdc, feature_statistics, frechet_distance
from ganlab.metrics.kid import KID_NUM_SUBSETS, KID_SUBSET_SIZE

# Every key `score` returns, in its order; kid_std is the spread of KID over its subsets.
METRICS = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage")


def score(
    fake_images: np.ndarray,
    net: FeatureSpace,
    reference: dict[str, np.ndarray],
    *,
    nearest_k: int,
    device: torch.device,
    kid_seed: int = 0,
    kid: bool = True,
) -> dict[str, Any]:
    """fake uint8 (N, H, W, C) vs the cached real `reference` (features, mu, sigma) in the feature space
    `net` (a domain FeatureNet or the InceptionSpace) -> {key: float for key in METRICS}. KID compares the same
    real and fake features as PRDC; `kid_seed` seeds its subset draws (same inputs and seed -> same KID);
    `kid=False` leaves it out (its 100 subsets cost about 4 s at N = 5000 on 2 CPU cores)."""
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
    kids = compute_kid(reference["features"], fake_features, subset_size=KID_SUBSET_SIZE,
                       num_subsets=KID_NUM_SUBSETS, seed=kid_seed) if kid else {}  # fmt: skip
    prdc = compute_prdc(reference["features"], fake_features, nearest_k=nearest_k)
    return {"fid": float(fid), **kids, **{k: float(v) for k, v in prdc.items()}}
