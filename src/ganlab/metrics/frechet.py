"""Fréchet distance between Gaussian fits of two feature sets (the FID formula), in float64.

    FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)

The reference implementation (`pytorch_fid.fid_score.calculate_frechet_distance`, Dougal Sutherland's
"stable version") takes `scipy.linalg.sqrtm` of the non-symmetric product S1 S2, a Schur-decomposition
method that is slow at D = 2048 and returns complex values (or raises "Imaginary component") when the
product is singular. Here the trace term uses one symmetric eigenvalue problem:

    S1 = L L^T (Cholesky)  =>  L^T S2 L = L^{-1} (S1 S2) L  has the eigenvalues of S1 S2
    => tr sqrt(S1 S2) = sum_i sqrt(lambda_i(L^T S2 L)),  L^T S2 L symmetric PSD.

When S1 is numerically singular (Cholesky fails or has round-off-sized pivots), L is replaced by
R = S1^{1/2} from `eigh(S1)` with negative round-off eigenvalues clipped to 0: R S2 R and S1 S2 share
their non-zero eigenvalues (S1 S2 = R (R S2), R S2 R = (R S2) R), so the formula still holds.
Round-off negatives of the final eigenvalues are clipped to 0, so the value is always real.

Contracts: `feature_statistics` returns (mu (D,), sigma (D, D)) in float64 with sigma the unbiased
`np.cov(features, rowvar=False)`; `frechet_distance` returns a float >= 0 up to round-off. With N <= D
samples the covariance is singular (rank <= N - 1 < D); the value is still computed, but it is a strongly
biased estimate, so both functions warn (`warn_if_singular_covariance` lets evaluation code warn early
from N and D alone).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.linalg import blas

__all__ = ["SingularCovarianceWarning", "feature_statistics", "frechet_distance", "warn_if_singular_covariance"]


class SingularCovarianceWarning(UserWarning):
    """The covariance of a feature set is singular: the Fréchet distance is computed but biased."""


def _as_float64_numpy(x, name: str) -> np.ndarray:
    """Any array-like or torch tensor (any device) -> float64 numpy array, validated finite."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(x, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return arr


def warn_if_singular_covariance(n_samples: int, dims: int, name: str = "features") -> bool:
    """Warn (SingularCovarianceWarning) and return True when N samples in D dims give a singular covariance.

    The sample covariance of N points has rank <= N - 1, so it is singular iff N <= D. FID from such
    statistics is finite here but biased (it treats the missing directions as zero variance), so it is not
    comparable with FID computed from N > D samples.
    """
    if n_samples <= dims:
        warnings.warn(
            f"{name}: {n_samples} samples in {dims} dims give a singular covariance (rank <= {n_samples - 1} "
            f"< {dims}); the Fréchet distance is computed, but it is biased and not comparable with "
            f"values from N > {dims} samples",
            SingularCovarianceWarning,
            stacklevel=2,
        )
        return True
    return False


def _warn_singular(name: str, rank: int, dims: int) -> None:
    warnings.warn(
        f"{name} is singular (numerical rank {rank} < {dims}; e.g. from N <= D samples); the Fréchet "
        f"distance is computed with its zero-variance directions, so it is biased and not comparable "
        f"with values from full-rank covariances",
        SingularCovarianceWarning,
        stacklevel=3,
    )


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature set, in float64.

    Args:
        features: (N, D) numpy array or torch tensor (any float dtype, any device), N >= 2, all finite.
    Returns:
        mu: (D,) float64 mean; sigma: (D, D) float64 covariance, `np.cov(features, rowvar=False)`
        (divides by N - 1). Warns (SingularCovarianceWarning) when N <= D.
    """
    x = _as_float64_numpy(features, "features")
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must have shape (N, D) with N >= 2, got {x.shape}")
    n, d = x.shape
    warn_if_singular_covariance(n, d)
    mu = x.mean(axis=0)
    sigma = np.cov(x, rowvar=False)  # (D, D), unbiased, same convention as pytorch_fid
    return mu, np.atleast_2d(sigma)


def _rank_tolerance(eigvals: np.ndarray) -> float:
    """numpy.linalg.matrix_rank's default tolerance: largest |eigenvalue| * D * float64 eps."""
    return float(np.abs(eigvals).max(initial=0.0)) * eigvals.shape[0] * np.finfo(np.float64).eps


def _positive_definite_factor(sigma: np.ndarray) -> np.ndarray | None:
    """Cholesky factor L (sigma = L L^T) when sigma is numerically positive definite, else None.

    Numerically singular here: Cholesky fails, or its smallest pivot L_ii^2 is below
    matrix_rank's tolerance relative to the largest (rank-deficient PSD matrices can pass Cholesky
    with round-off-sized pivots).
    """
    try:
        lower = np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        return None
    pivots = np.diagonal(lower) ** 2
    if pivots.min() <= _rank_tolerance(pivots):
        return None
    return lower


def _times_lower(a: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """a @ lower for lower-triangular `lower`, with BLAS trmm (half the flops of a GEMM)."""
    # trmm computes op(A) B or B op(A) in place on B; B is a copy in Fortran order.
    return blas.dtrmm(1.0, lower, np.array(a, order="F"), side=1, lower=1)


def _lower_t_times(lower: np.ndarray, b: np.ndarray) -> np.ndarray:
    """lower.T @ b for lower-triangular `lower`, with BLAS trmm."""
    return blas.dtrmm(1.0, lower, np.array(b, order="F"), side=0, lower=1, trans_a=1)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64.

    Args:
        mu1, mu2: (D,) means. sigma1, sigma2: (D, D) symmetric PSD covariances (numpy or torch, finite).
    Returns:
        ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr sqrt(sigma1 sigma2), a float (>= 0 up to round-off).
        Equals `pytorch_fid.fid_score.calculate_frechet_distance` to ~1e-10 relative on well-conditioned
        covariances. A singular covariance gives a finite value and a SingularCovarianceWarning.
    Raises:
        ValueError naming the input that is non-finite or has the wrong shape.
    """
    mu1 = np.atleast_1d(_as_float64_numpy(mu1, "mu1"))
    mu2 = np.atleast_1d(_as_float64_numpy(mu2, "mu2"))
    sigma1 = np.atleast_2d(_as_float64_numpy(sigma1, "sigma1"))
    sigma2 = np.atleast_2d(_as_float64_numpy(sigma2, "sigma2"))
    d = mu1.shape[0]
    for name, arr, shape in (("mu1", mu1, (d,)), ("mu2", mu2, (d,)), ("sigma1", sigma1, (d, d)), ("sigma2", sigma2, (d, d))):
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}, expected {shape} (D = {d} from mu1)")
    # Symmetrise: np.cov is symmetric only up to round-off, and eigh reads one triangle.
    sigma1 = (sigma1 + sigma1.T) / 2
    sigma2 = (sigma2 + sigma2.T) / 2

    factor = _positive_definite_factor(sigma1)
    sigma1_invertible = factor is not None
    if not sigma1_invertible:
        # Singular sigma1: R = sigma1^{1/2} = V diag(sqrt(max(w, 0))) V^T, (D, D).
        w1, v1 = np.linalg.eigh(sigma1)
        factor = (v1 * np.sqrt(np.clip(w1, 0.0, None))) @ v1.T
        tol1 = _rank_tolerance(w1)
        _warn_singular("sigma1", int((w1 > tol1).sum()), d)
        m = factor @ sigma2 @ factor  # R sigma2 R
    else:
        # sigma1 = L L^T: L^T sigma2 L = L^-1 (sigma1 sigma2) L, same eigenvalues; two triangular products.
        m = _lower_t_times(factor, _times_lower(sigma2, factor))
    # M is symmetric PSD; its eigenvalues are those of sigma1 sigma2, so tr sqrt = sum sqrt(eig).
    wm = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(wm, 0.0, None)).sum())
    tolm = _rank_tolerance(wm)
    if sigma1_invertible and (wm <= tolm).any():
        # sigma1 invertible => rank(L^T sigma2 L) = rank(sigma2)
        _warn_singular("sigma2", int((wm > tolm).sum()), d)

    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
