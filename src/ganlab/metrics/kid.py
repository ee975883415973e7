"""Kernel Inception Distance (Binkowski et al., ICLR 2018, "Demystifying MMD GANs"), in float64.

KID is the squared maximum mean discrepancy between real X_1..X_m and fake Y_1..Y_m features under the
polynomial kernel of degree 3, k(x, y) = (x^T y / d + 1)^3 with d the feature dimension, in its unbiased form:

    MMD^2 = 1/(m(m-1)) sum_{i != j} [k(X_i, X_j) + k(Y_i, Y_j)]  -  2/m^2 sum_{i, j} k(X_i, Y_j)

(`mmd_est="unbiased"` in the authors' mbinkowski/MMD-GAN `gan/compute_scores.py` and torch-fidelity's `metric_kid`).
Being unbiased, it can be slightly negative when the two distributions are equal.

It is averaged over `num_subsets` pairs of subsets of m = min(subset_size, N real, N fake) rows each, drawn
without replacement from each side by `numpy.random.default_rng(seed)` (per subset: the real rows, then the fake
rows). Defaults as torch-fidelity and the paper: 100 subsets of 1000. "kid_std" is the sample standard deviation
(ddof = 1) of the subset values; torch-fidelity reports np.std (ddof = 0), sqrt((s - 1) / s) times ours. When
m = N real = N fake every subset is the whole set, so kid_std is round-off (~1e-15 of kid), not an uncertainty.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["KID_NUM_SUBSETS", "KID_SUBSET_SIZE", "compute_kid", "kid_subset_size"]

KID_SUBSET_SIZE = 1000
KID_NUM_SUBSETS = 100


def kid_subset_size(n_real: int, n_fake: int, subset_size: int = KID_SUBSET_SIZE) -> int:
    """Rows per subset that `compute_kid` draws from each side: min(subset_size, n_real, n_fake)."""
    return min(subset_size, n_real, n_fake)


def compute_kid(
    real_features, fake_features, *, subset_size: int = KID_SUBSET_SIZE, num_subsets: int = KID_NUM_SUBSETS,
    seed: int = 0,
) -> dict[str, float]:  # fmt: skip
    """KID of fake features against real features (see the module docstring).

    Args:
        real_features: (N, D) numpy array or torch tensor, finite, N >= 2.
        fake_features: (M, D), same D, finite, M >= 2.
        subset_size: rows per subset and side before capping at min(N, M), >= 2.
        num_subsets: number of subset pairs, >= 2 (for the standard deviation).
        seed: seed of the subset draws; same inputs and seed -> identical result.
    Returns:
        {"kid": mean of the subset MMD^2 values, "kid_std": their sample std}, Python floats.
    """
    if not isinstance(subset_size, int) or subset_size < 2:
        raise ValueError(f"subset_size must be an integer >= 2, got {subset_size!r}")
    if not isinstance(num_subsets, int) or num_subsets < 2:
        raise ValueError(f"num_subsets must be an integer >= 2 (for kid_std), got {num_subsets!r}")
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real_features has D={real.shape[1]} but fake_features has D={fake.shape[1]}")
    m = kid_subset_size(len(real), len(fake), subset_size)
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for s in range(num_subsets):
        x = real[rng.choice(len(real), m, replace=False)]  # (m, D)
        y = fake[rng.choice(len(fake), m, replace=False)]  # (m, D)
        values[s] = _mmd2_unbiased(x, y)
    return {"kid": float(values.mean()), "kid_std": float(values.std(ddof=1))}


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two (m, D) float64 sets under (x^T y / D + 1)^3."""
    m, d = x.shape
    k_xx, k_yy, k_xy = (_poly_kernel_(a @ b.T, d) for a, b in ((x, x), (y, y), (x, y)))  # (m, m) each
    off_diagonal = k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)
    return off_diagonal / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m)


def _poly_kernel_(gram: np.ndarray, d: int) -> np.ndarray:
    """(gram / d + 1)^3, overwriting gram (products: several times faster than np.power)."""
    gram /= d
    gram += 1.0
    cube = gram * gram
    cube *= gram
    return cube


def _as_features(x, name: str) -> np.ndarray:
    """(N, D) array-like or torch tensor (any device) -> float64 numpy array, validated."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, D) with D >= 1, got {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} has {arr.shape[0]} rows; the unbiased KID estimator needs at least 2")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return arr
