"""PRDC against the `prdc` package (clovaai/generative-evaluation-prdc) on random and structured sets."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import prdc
import pytest
import torch

import ganlab.metrics.prdc as prdc_mod
from ganlab.metrics import compute_prdc

KEYS = ("precision", "recall", "density", "coverage")


def reference(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints "Num real: ..."
        out = prdc.compute_prdc(real, fake, nearest_k=k)
    return {key: float(out[key]) for key in KEYS}


def assert_matches(real, fake, k, chunk_size, **kwargs):
    ours = compute_prdc(real, fake, nearest_k=k, chunk_size=chunk_size, **kwargs)
    ref = reference(real, fake, k)
    assert set(ours) == set(KEYS)
    for key in KEYS:
        assert isinstance(ours[key], float)
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), (key, ours, ref)
    return ours


def clustered(rng, n, d, centers, spread, dtype):
    """Gaussian blobs around the given centres (n, d)."""
    labels = rng.integers(0, len(centers), n)
    return (centers[labels] + spread * rng.standard_normal((n, d))).astype(dtype)


@pytest.mark.parametrize(
    "n, m, d, k, chunk, dtype",
    [
        (600, 450, 16, 1, 128, np.float32),
        (500, 700, 64, 3, 100, np.float32),  # chunk does not divide N or M
        (700, 500, 64, 5, 700, np.float64),
        (300, 310, 1000, 5, 64, np.float32),
        (257, 255, 8, 5, 7, np.float32),  # many tiny tiles, last ones ragged
    ],
)
def test_random_features_match_prdc(n, m, d, k, chunk, dtype):
    rng = np.random.default_rng(n + m + d + k)
    real = rng.standard_normal((n, d)).astype(dtype)
    fake = (1.1 * rng.standard_normal((m, d)) + 0.05).astype(dtype)
    assert_matches(real, fake, k, chunk)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_clustered_features_match_prdc(k):
    # Structured data: real in 10 blobs, fake in 6 of them plus 2 new ones, offset from the origin
    # (non-centred features, as from ReLU networks), N != M, chunk boundaries inside blobs.
    rng = np.random.default_rng(20 + k)
    centers = 4.0 * rng.standard_normal((12, 32)) + 3.0
    real = clustered(rng, 1200, 32, centers[:10], 0.7, np.float32)
    fake = clustered(rng, 900, 32, centers[4:], 0.5, np.float32)
    out = assert_matches(real, fake, k, 256)
    assert 0 < out["precision"] < 1 and 0 < out["coverage"] < 1


def test_mixed_dtypes_match_prdc():
    # float32 real, float64 fake: prdc stores real radii in float32, cross distances in float64.
    rng = np.random.default_rng(30)
    real = rng.standard_normal((400, 48)).astype(np.float32)
    fake = rng.standard_normal((350, 48))
    assert_matches(real, fake, 5, 128)


def test_fake_copies_of_real_points_match_prdc():
    # Exact duplicates across the sets: distance 0 < positive radius, so every copy counts.
    rng = np.random.default_rng(31)
    real = rng.standard_normal((500, 24)).astype(np.float32)
    fake = np.concatenate([real[:150], rng.standard_normal((250, 24)).astype(np.float32)])
    out = assert_matches(real, fake, 3, 96)
    assert out["precision"] >= 150 / 400


def test_duplicates_inside_real_match_prdc():
    # Pairs of identical real points with k = 3: the radius is the 4th smallest including self, so it
    # stays positive; zero radii (>= k+1 copies) are prdc round-off noise and left out on purpose.
    rng = np.random.default_rng(32)
    base = rng.standard_normal((300, 20)).astype(np.float32)
    real = np.concatenate([base, base[:100]])
    fake = rng.standard_normal((350, 20)).astype(np.float32)
    assert_matches(real, fake, 3, 64)


def test_identical_sets():
    # Same array on both sides: every fake sits on a real point (distance 0 < radius), so precision =
    # recall = coverage = 1; density is whatever prdc counts (>= 1/k per point, matched exactly).
    rng = np.random.default_rng(33)
    x = rng.standard_normal((800, 32)).astype(np.float32)
    out = assert_matches(x, x, 5, 200)
    assert out["precision"] == out["recall"] == out["coverage"] == 1.0
    assert out["density"] >= 1.0 / 5


def test_readme_example_behaves_like_prdc():
    # prdc README: 1000-d N(0, I) real vs fake, k = 5 (10k each there: p~0.477, r~0.471, d~1.056,
    # c~0.974). At N = M = 1000 the values differ from the 10k ones but must equal prdc's.
    rng = np.random.default_rng(34)
    real = rng.standard_normal((1000, 1000)).astype(np.float32)
    fake = rng.standard_normal((1000, 1000)).astype(np.float32)
    out = assert_matches(real, fake, 5, 384)
    # Same distribution: density near 1 and coverage near 1 - 2^-5 (module reference, A7).
    assert out["density"] == pytest.approx(1.0, abs=0.15)
    assert out["coverage"] == pytest.approx(0.969, abs=0.03)


def test_independent_of_chunk_size_and_input_type():
    rng = np.random.default_rng(35)
    real = rng.standard_normal((333, 40)).astype(np.float32)
    fake = rng.standard_normal((222, 40)).astype(np.float32)
    base = compute_prdc(real, fake, 4, chunk_size=2048)
    assert compute_prdc(real, fake, 4, chunk_size=50) == base
    assert compute_prdc(torch.from_numpy(real), torch.from_numpy(fake), 4, chunk_size=7) == base


def test_fallback_paths_match_prdc(monkeypatch):
    # Force every row through the float64 fallback (no spare candidates) and, separately, the float64
    # GEMM path that a reduced float32 matmul precision selects; both must stay exact.
    rng = np.random.default_rng(36)
    real = rng.standard_normal((400, 64)).astype(np.float32)
    fake = rng.standard_normal((300, 64)).astype(np.float32)
    calls = []
    original = prdc_mod._radii_fallback
    monkeypatch.setattr(prdc_mod, "_radii_fallback", lambda *a: (calls.append(a[1].numel()), original(*a))[1])
    monkeypatch.setattr(prdc_mod, "_EXTRA_CANDIDATES", 0)
    assert_matches(real, fake, 5, 128)
    assert calls == [400, 300]
    monkeypatch.setattr(prdc_mod, "_EXTRA_CANDIDATES", 8)
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        assert not prdc_mod._float32_matmul_is_ieee(torch.device("cpu"))
        assert_matches(real, fake, 5, 128)
    finally:
        torch.set_float32_matmul_precision(previous)


def test_exact_duplicate_ties_follow_strict_less_than():
    # Integer-valued features make exact ties common; exact arithmetic then follows `<` literally.
    # Two real points at distance 1 with k = 1: each radius is 1, and a fake point at distance 1 from
    # both is not inside either ball.
    real = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 10.0], [11.0, 10.0]])
    fake = np.array([[0.0, 1.0], [10.5, 10.0], [0.0, 0.0], [30.0, 30.0]])
    out = compute_prdc(real, fake, nearest_k=1, chunk_size=2)
    # fake 0 at distance 1 from real 0 (radius 1): out; fake 1 at 0.5 from reals 2 and 3: in (2 balls);
    # fake 2 on real 0: in real 0's ball only (distance to real 1 is 1 = radius).
    assert out["precision"] == pytest.approx(2 / 4)
    assert out["density"] == pytest.approx(3 / 4)
    assert out["coverage"] == pytest.approx(3 / 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(nearest_k=0), "nearest_k"),
        (dict(nearest_k=10), "real_features has 10 samples"),
        (dict(chunk_size=0), "chunk_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    x = np.zeros((10, 3), np.float32) + np.arange(10, dtype=np.float32)[:, None]
    with pytest.raises(ValueError, match=match):
        compute_prdc(x, x + 0.5, **kwargs)


def test_non_finite_and_shape_errors_name_the_input():
    x = np.random.default_rng(0).standard_normal((20, 3))
    bad = x.copy()
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match="fake_features contains non-finite"):
        compute_prdc(x, bad)
    with pytest.raises(ValueError, match="D=3 but fake_features has D=4"):
        compute_prdc(x, np.zeros((20, 4)))
