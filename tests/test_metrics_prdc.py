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


SCREENS = (torch.bfloat16, torch.float32, torch.float64)


def gaussian(rng, n, d, scale=1.0):
    return (scale * rng.standard_normal((n, d))).astype(np.float32)


def relu_features(rng, n, d, dtype=np.float32):
    """CNN-like features: ReLU of a low-rank map with a decaying spectrum plus a bias, so non-negative,
    sparse, far from centred, with a spread of norms."""
    latent = rng.standard_normal((n, 12)) * (0.8 ** np.arange(12))
    weights = rng.standard_normal((12, d))
    return np.maximum(latent @ weights + 0.5 + 0.3 * rng.standard_normal((n, d)), 0).astype(dtype)


def spy_screens(monkeypatch, dtypes):
    """Forces the screening dtypes tried, in order; returns the list of those that ran."""
    ran = []
    original = prdc_mod._prdc_counts
    monkeypatch.setattr(prdc_mod, "_screen_dtypes", lambda device: list(dtypes))
    monkeypatch.setattr(prdc_mod, "_prdc_counts", lambda *a: (ran.append(a[4]), original(*a))[1])
    return ran


@pytest.mark.parametrize("screen", SCREENS)
def test_every_screen_dtype_matches_prdc(monkeypatch, screen):
    # Each screen alone (no fallback) on Gaussian, ReLU-like and clustered features, ragged tiles.
    ran = spy_screens(monkeypatch, [screen])
    rng = np.random.default_rng(40)
    assert_matches(gaussian(rng, 330, 96), gaussian(rng, 270, 96), 5, 100)
    assert_matches(relu_features(rng, 400, 128), relu_features(rng, 300, 128), 4, 128)
    centers = 4.0 * rng.standard_normal((8, 24)) + 3.0
    real = clustered(rng, 500, 24, centers[:6], 0.6, np.float32)
    assert_matches(real, clustered(rng, 350, 24, centers[2:], 0.5, np.float64), 3, 96)
    assert ran == [screen] * 3


def test_loose_screens_give_up_and_the_result_is_unchanged(monkeypatch):
    # Tight clusters (spread 1e-2) far from the mean (|x| ~ 400): neither the bf16 nor the float32
    # bound separates neighbours, so both hand over, and the float64 screen decides. (Much tighter
    # clusters would make prdc's own float64 GEMM round-off flip comparisons.)
    ran = spy_screens(monkeypatch, SCREENS)
    rng = np.random.default_rng(41)
    centers = 100.0 * rng.standard_normal((3, 16))
    real = clustered(rng, 300, 16, centers, 1e-2, np.float64)
    fake = clustered(rng, 260, 16, centers, 1e-2, np.float64)
    assert_matches(real, fake, 5, 128)
    assert ran == list(SCREENS)
    # Overflow of the float32 accumulation (|x|^2 ~ 1e42) is caught when the copies are made.
    ran.clear()
    assert_matches(1e20 * rng.standard_normal((200, 8)), 1e20 * rng.standard_normal((150, 8)), 3, 64)
    assert ran == list(SCREENS)


def test_candidate_budget_forces_the_next_screen(monkeypatch):
    ran = spy_screens(monkeypatch, SCREENS)
    monkeypatch.setattr(prdc_mod, "_MAX_KEPT_PER_ROW", 0)
    rng = np.random.default_rng(42)
    assert_matches(gaussian(rng, 300, 32), gaussian(rng, 200, 32), 5, 64)
    assert ran == list(SCREENS)


def test_reduced_float32_matmul_precision_skips_the_float32_screen():
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        assert not prdc_mod._float32_matmul_is_ieee(torch.device("cpu"))
        assert torch.float32 not in prdc_mod._screen_dtypes(torch.device("cpu"))
        rng = np.random.default_rng(43)
        assert_matches(gaussian(rng, 400, 64), gaussian(rng, 300, 64), 5, 128)
    finally:
        torch.set_float32_matmul_precision(previous)
    assert prdc_mod._screen_dtypes(torch.device("cpu"))[-2:] == [torch.float32, torch.float64]


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # torch's mkldnn.flags
def test_screen_order_and_few_recomputed_pairs(monkeypatch):
    # bf16 first exactly where oneDNN has native bf16 dot products; and on Gaussian features the screen
    # leaves ~1 exact and a few float32 recomputations per row (the speed, checked without timing).
    assert (prdc_mod._screen_dtypes(torch.device("cpu"))[0] == torch.bfloat16) == prdc_mod._cpu_has_bf16_gemm()
    with torch.backends.mkldnn.flags(enabled=False):
        assert not prdc_mod._cpu_has_bf16_gemm()
    counted = {"exact": 0, "float32": 0}

    def counting(key, original):
        return lambda *a: (counted.update({key: counted[key] + len(a[2])}), original(*a))[1]

    monkeypatch.setattr(prdc_mod, "_exact_sq_dists", counting("exact", prdc_mod._exact_sq_dists))
    monkeypatch.setattr(prdc_mod, "_float32_intervals", counting("float32", prdc_mod._float32_intervals))
    rng = np.random.default_rng(47)
    assert_matches(gaussian(rng, 1200, 256), gaussian(rng, 1000, 256), 5, 2048)
    assert 2200 <= counted["exact"] <= 2 * 2200 and counted["float32"] <= 20 * 2200, counted


def test_worker_threads_do_not_change_the_result():
    # 512-row tiles at D = 64 run as parallel tasks; any thread count gives the same numbers, and the
    # caller's torch thread count is restored.
    rng = np.random.default_rng(46)
    real, fake = gaussian(rng, 1500, 64), gaussian(rng, 1200, 64)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = compute_prdc(real, fake, 5, chunk_size=512)
        torch.set_num_threads(3)
        assert compute_prdc(real, fake, 5, chunk_size=512) == one
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(previous)
    assert one == pytest.approx(reference(real, fake, 5), abs=1e-6)


def test_tiny_features_are_exact():
    # Squared distances ~1e-38: below float32's normal range, so only the float64 screen decides.
    rng = np.random.default_rng(44)
    assert_matches(gaussian(rng, 200, 16, 1e-19), gaussian(rng, 180, 16, 1e-19), 3, 64)


def test_lattice_ties_through_every_tier_match_prdc():
    # float32 points on a small integer lattice: many cross distances equal a radius exactly (decided
    # by prdc's strict `<` only at the exact tier), plus copies nudged by +-2^-12 so that the float32 tier
    # decides close calls both ways.
    rng = np.random.default_rng(45)
    real = rng.integers(0, 4, (600, 6)).astype(np.float32)
    fake = rng.integers(0, 4, (500, 6)).astype(np.float32)
    fake[::3] += rng.choice([-1, 1], (len(fake[::3]), 6)).astype(np.float32) * 2.0**-12
    for k in (3, 7):
        assert_matches(real, fake, k, 128)


# --- the bounds themselves: they contain the true squared distance, and they are not vacuous ------


def embeddings(x, y, screen, shift):
    d = x.shape[1]
    bound = prdc_mod._Bound(screen, d)
    ws = prdc_mod._Workspace(max(len(x), len(y)), d, screen, 1, torch.device("cpu"))
    center = x.mean(0, dtype=torch.float64)
    ex = prdc_mod._Embedding(x, center, bound, ws, False)
    ey = prdc_mod._Embedding(y, center, bound, ws, False)
    ex.set_shift(shift)
    ey.set_shift(shift)
    o = torch.mm(ex.u, ey.columns(0, len(y), ws.workers[0]).T).double()  # the screening GEMM, all pairs
    return ex, ey, o, ws


def feature_pairs(kind, rng):
    if kind == "gaussian":
        x, y = rng.standard_normal((300, 512)), 1.1 * rng.standard_normal((250, 512))
    elif kind == "relu":
        x, y = relu_features(rng, 300, 200), relu_features(rng, 250, 200)
    elif kind == "clustered":
        centers = 5.0 * rng.standard_normal((4, 40)) + 2.0
        x, y = clustered(rng, 300, 40, centers, 0.3, np.float32), clustered(rng, 250, 40, centers, 0.3, np.float32)
    else:  # "scaled": huge offset and scale, float64
        x, y = 1e6 + 1e3 * rng.standard_normal((300, 64)), 1e6 + 1e3 * rng.standard_normal((250, 64))
    x, y = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y))
    dtype = torch.float32 if x.dtype == torch.float32 else torch.float64
    x, y = x.to(dtype), y.to(dtype)
    # float64 difference form and its own error bound (D + 2) 2^-53 relative.
    true = ((x.double()[:, None, :] - y.double()[None, :, :]) ** 2).sum(-1)
    return x, y, true, (x.shape[1] + 2) * 2.0**-52


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("kind", ["gaussian", "relu", "clustered", "scaled"])
def test_screen_intervals_contain_the_distance_and_are_tight(screen, kind):
    rng = np.random.default_rng(50)
    x, y, true, tol = feature_pairs(kind, rng)
    ex, ey, o, _ = embeddings(x, y, screen, float(true.kthvalue(6, dim=1).values.median()))
    i, j = torch.meshgrid(torch.arange(len(x)), torch.arange(len(y)), indexing="ij")
    lo, hi = prdc_mod._intervals(ex, ey, i.reshape(-1), j.reshape(-1), o.reshape(-1))
    lo, hi = lo.view_as(true), hi.view_as(true)
    assert (lo <= true * (1 + tol)).all() and (hi >= true * (1 - tol)).all()
    # Not vacuous: within the precision the screen dtype can give (bf16 2^-8 per input, float32 2^-24 D).
    rel = ((hi - lo) / true).median()
    assert rel < {torch.bfloat16: 0.1, torch.float32: 1e-3, torch.float64: 1e-11}[screen], rel

    # Thresholds: no pair with lo <= t is screened out, and the screen passes few others.
    t = true.kthvalue(8, dim=1).values  # per-row threshold, e.g. a k-NN radius
    ext = ey.extremes(0, len(y))
    tau = prdc_mod._thresholds(ex, 0, len(x), t, ext, torch.float64)
    passed = o >= tau[:, None]
    assert passed[lo <= t[:, None]].all()
    assert passed.sum() <= 4 * (lo <= t[:, None]).sum() + 4 * len(x)
    # Column-side thresholds (the same function with the roles swapped) and infinite thresholds.
    t_col = true.kthvalue(8, dim=0).values
    tau_col = prdc_mod._thresholds(ey, 0, len(y), t_col, ex.extremes(0, len(x)), torch.float64)
    assert (o >= tau_col[None, :])[lo <= t_col[None, :]].all()
    inf = prdc_mod._thresholds(ex, 0, len(x), torch.full_like(t, float("inf")), ext, torch.float64)
    assert (inf == float("-inf")).all()

    # Upper bounds from the 6th largest o of each row cover hi of every pair with o at least that.
    ok = o.topk(6, dim=1).values[:, -1]
    h = prdc_mod._upper_bounds(ex, 0, len(x), ok, ext)
    assert (hi[o >= ok[:, None]] <= h.repeat_interleave((o >= ok[:, None]).sum(1))).all()
    assert (h <= 2 * true.kthvalue(6, dim=1).values + 1e-30).all() or kind == "scaled"


@pytest.mark.parametrize("kind", ["gaussian", "relu", "clustered"])
def test_float32_tier_intervals_contain_the_distance_and_are_tight(kind):
    rng = np.random.default_rng(51)
    x, y, true, tol = feature_pairs(kind, rng)
    x, y = x.float(), y.float()
    true = ((x.double()[:, None, :] - y.double()[None, :, :]) ** 2).sum(-1)
    ws = prdc_mod._Workspace(8, x.shape[1], torch.bfloat16, 2, torch.device("cpu"))
    i, j = torch.meshgrid(torch.arange(len(x)), torch.arange(len(y)), indexing="ij")
    lo, hi = prdc_mod._float32_intervals(x, y, i.reshape(-1), j.reshape(-1), ws)
    lo, hi = lo.view_as(true), hi.view_as(true)
    assert (lo <= true * (1 + tol)).all() and (hi >= true * (1 - tol)).all()
    assert ((hi - lo) <= 4 * (x.shape[1] + 2) * 2.0**-24 * true + 1e-30).all()


def test_select_keeps_the_kth_smallest_of_each_row():
    # Random true values with many ties and random interval widths (some exact); after _select the
    # rank-th smallest true value among the kept pairs, with the updated rank, is the row's kth value.
    rng = np.random.default_rng(52)
    n, k = 300, 5
    counts = rng.integers(k + 1, 40, n)
    rows = torch.from_numpy(np.repeat(np.arange(n), counts))
    true = torch.from_numpy(rng.integers(0, 30, rows.numel()).astype(np.float64))
    width = torch.from_numpy(rng.choice([0.0, 0.5, 3.0, 20.0], rows.numel()))
    lo = (true - width * torch.rand(rows.numel(), dtype=torch.float64)).clamp(min=0)
    hi = true + width * torch.rand(rows.numel(), dtype=torch.float64)
    perm = torch.randperm(rows.numel())  # pairs arrive in any order
    rows, true, lo, hi = rows[perm], true[perm], lo[perm], hi[perm]
    cols = torch.arange(rows.numel())
    rank = torch.full((n,), k)
    kept_rows, kept_cols, rank = prdc_mod._select(rows, cols, *prdc_mod._outward32(lo, hi), rank, n)
    assert kept_rows.numel() < rows.numel()
    for r in range(n):
        want = true[rows == r].sort().values[k]
        got = true[kept_cols[kept_rows == r]].sort().values[rank[r]]
        assert got == want


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 4096, 4099])
def test_nonzero_flat_matches_nonzero(size):
    rng = np.random.default_rng(size)
    for density in (0.0, 0.01, 0.5, 1.0):
        mask = torch.from_numpy(rng.random(size) < density)
        assert torch.equal(prdc_mod._nonzero_flat(mask), mask.nonzero().squeeze(1))


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
