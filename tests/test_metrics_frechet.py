"""Fréchet distance against pytorch_fid's own function, closed forms, and the singular case."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from ganlab.metrics import feature_statistics, frechet_distance, warn_if_singular_covariance
from ganlab.metrics.frechet import SingularCovarianceWarning

# pytorch_fid passes scipy's deprecated `disp` argument; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")


def _random_stats(rng: np.random.Generator, d: int, shift: float = 0.0):
    """Full-rank covariance A A^T / 2d with A (d, 2d) Gaussian (+ shift), and a Gaussian mean."""
    a = rng.standard_normal((d, 2 * d)) + shift
    return rng.standard_normal(d), a @ a.T / (2 * d)


@pytest.mark.parametrize("d", [64, 256])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pytorch_fid(d, seed):
    rng = np.random.default_rng(seed)
    mu1, s1 = _random_stats(rng, d)
    mu2, s2 = _random_stats(rng, d, shift=0.3)
    ref = calculate_frechet_distance(mu1, s1, mu2, s2)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-4)
    assert ref > 1.0  # not a trivially small value


@pytest.mark.slow  # scipy sqrtm at D = 2048 takes ~10 s on 2 cores
def test_matches_pytorch_fid_2048_from_features():
    # The real use: 2048-d Inception-sized statistics from feature arrays (N > D, full rank).
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2500, 2048)) * rng.uniform(0.5, 2.0, 2048)
    y = rng.standard_normal((2500, 2048)) + 0.05
    mu1, s1 = feature_statistics(x)
    mu2, s2 = feature_statistics(y)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(calculate_frechet_distance(mu1, s1, mu2, s2), rel=1e-4)


def test_feature_statistics_is_np_cov_in_float64():
    x32 = torch.randn(300, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    mu, sigma = feature_statistics(x32)
    x64 = x32.double().numpy()
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    assert mu.shape == (16,) and sigma.shape == (16, 16)
    np.testing.assert_allclose(mu, x64.mean(0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(sigma, np.cov(x64, rowvar=False), rtol=0, atol=1e-15)


def test_identical_statistics_give_zero():
    mu, s = _random_stats(np.random.default_rng(4), 128)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)


def test_diagonal_closed_form():
    # Commuting (diagonal) covariances: FD = |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2.
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0.1, 3.0, 50), rng.uniform(0.1, 3.0, 50)
    mu1, mu2 = rng.standard_normal(50), rng.standard_normal(50)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_scaled_covariance_closed_form():
    # sigma2 = t^2 sigma1  =>  tr sqrt(s1 s2) = t tr(s1)  =>  FD = (1 - t)^2 tr(s1) (same means).
    mu, s = _random_stats(np.random.default_rng(6), 96)
    t = 1.7
    assert frechet_distance(mu, s, mu, t**2 * s) == pytest.approx((1 - t) ** 2 * np.trace(s), rel=1e-10)


def test_accepts_torch_tensors():
    mu1, s1 = _random_stats(np.random.default_rng(7), 32)
    mu2, s2 = _random_stats(np.random.default_rng(8), 32)
    from_torch = frechet_distance(*(torch.from_numpy(v) for v in (mu1, s1, mu2, s2)))
    assert from_torch == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-12)


def test_rank_deficient_warns_and_stays_finite():
    # N < D: pytorch_fid's sqrtm of the singular product may fail or go complex; ours is real and
    # equals the formula evaluated on the eigen-clipped matrices. Cross-check against an explicit
    # computation through sigma2's factor: tr sqrt(S1 S2) = nuclear norm of S1^1/2 S2^1/2.
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((60, 128)), rng.standard_normal((90, 128)) + 0.1
    with pytest.warns(SingularCovarianceWarning, match="singular"):
        mu1, s1 = feature_statistics(x)
    with pytest.warns(SingularCovarianceWarning, match="singular"):
        mu2, s2 = feature_statistics(y)
    with pytest.warns(SingularCovarianceWarning, match="sigma1 is singular.*biased"):
        value = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(value)

    def psd_sqrt(s):
        w, v = np.linalg.eigh(s)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    nuclear = np.linalg.svd(psd_sqrt(s1) @ psd_sqrt(s2), compute_uv=False).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * nuclear
    # Both sides take square roots of ~68 round-off eigenvalues (|w| ~ 1e-16 * ||S||, sqrt ~ 1e-8 each) that
    # depend on the LAPACK build: agreement to ~1e-8 relative is what the arithmetic allows, so 1e-7.
    assert value == pytest.approx(expected, rel=1e-7)
    assert value != pytest.approx(expected * (1 + 1e-5), rel=1e-7)  # and the tolerance still discriminates


def test_singular_second_covariance_is_named():
    mu1, s1 = _random_stats(np.random.default_rng(10), 64)
    v = np.random.default_rng(11).standard_normal((64, 10))
    with pytest.warns(SingularCovarianceWarning, match="sigma2 is singular"):
        assert np.isfinite(frechet_distance(mu1, s1, mu1, v @ v.T))


def test_full_rank_does_not_warn():
    mu1, s1 = _random_stats(np.random.default_rng(12), 64)
    mu2, s2 = _random_stats(np.random.default_rng(13), 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frechet_distance(mu1, s1, mu2, s2)
        feature_statistics(np.random.default_rng(14).standard_normal((65, 64)))


def test_warn_helper_uses_n_le_d():
    with pytest.warns(SingularCovarianceWarning, match="2048 dims"):
        assert warn_if_singular_covariance(2048, 2048) is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_singular_covariance(2049, 2048) is False


@pytest.mark.parametrize("which", ["mu1", "sigma1", "mu2", "sigma2"])
def test_non_finite_input_is_named(which):
    mu, s = _random_stats(np.random.default_rng(15), 8)
    args = {"mu1": mu.copy(), "sigma1": s.copy(), "mu2": mu.copy(), "sigma2": s.copy()}
    args[which].flat[3] = np.nan
    with pytest.raises(ValueError, match=f"{which} contains non-finite"):
        frechet_distance(**args)


def test_shape_mismatch_is_named():
    mu, s = _random_stats(np.random.default_rng(16), 8)
    with pytest.raises(ValueError, match="sigma2 has shape"):
        frechet_distance(mu, s, mu, s[:4, :4])
