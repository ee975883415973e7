"""KID against a direct O(N^2) loop, torch-fidelity's `metric_kid`, and the population value for Gaussians."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_fidelity.metric_kid import kernel_mmd, kid_features_to_metric

from ganlab.metrics import compute_kid
from ganlab.metrics.kid import kid_subset_size


def loop_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 of Binkowski et al. (2018), Eq. 2, pair by pair in Python floats."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (sum(float(u) * float(v) for u, v in zip(a, b)) / d + 1.0) ** 3

    same = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return same / (m * (m - 1)) - 2.0 * cross / (m * m)


def poly3_mean(p: float, q: float, d: int) -> float:
    """E (x^T x' / d + 1)^3 for independent x ~ N(p 1, I_d), x' ~ N(q 1, I_d), from the cumulants of
    u = x^T x' = sum_i x_i x'_i (a sum of d independent products z = x_i x'_i)."""
    m1, m2, m3 = p * q, (p * p + 1) * (q * q + 1), (p**3 + 3 * p) * (q**3 + 3 * q)  # E z, E z^2, E z^3
    k1, k2, k3 = d * m1, d * (m2 - m1**2), d * (m3 - 3 * m2 * m1 + 2 * m1**3)  # cumulants of u
    e1, e2, e3 = k1, k2 + k1**2, k3 + 3 * k2 * k1 + k1**3  # E u, E u^2, E u^3
    return 1 + 3 * e1 / d + 3 * e2 / d**2 + e3 / d**3


def population_kid(shift: float, d: int) -> float:
    """MMD^2 between N(0, I_d) and N(shift 1, I_d) under the KID kernel."""
    return poly3_mean(0, 0, d) + poly3_mean(shift, shift, d) - 2 * poly3_mean(0, shift, d)


def drawn_subsets(n_real: int, n_fake: int, m: int, num_subsets: int, seed: int):
    """The subset draws compute_kid documents: default_rng(seed), per subset the real rows, then the fake rows."""
    rng = np.random.default_rng(seed)
    for _ in range(num_subsets):
        yield rng.choice(n_real, m, replace=False), rng.choice(n_fake, m, replace=False)


# ----------------------------------------------------------------------------------------------------
# Independent references


@pytest.mark.parametrize(("n", "d", "subset_size"), [(2, 1, 2), (7, 3, 7), (24, 5, 1000)])
def test_one_subset_of_all_rows_equals_the_pairwise_loop(n, d, subset_size):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, d)) * 2.0 + 0.5
    y = rng.standard_normal((n, d)) * 1.5 - 0.3
    ours = compute_kid(x, y, subset_size=subset_size, num_subsets=3, seed=0)
    ref = loop_mmd2(x, y)
    # every subset is a permutation of all rows: the same value up to summation order
    assert ours["kid"] == pytest.approx(ref, rel=1e-12, abs=1e-12)
    assert 0 <= ours["kid_std"] < 1e-12 * max(1.0, abs(ref))


@pytest.mark.parametrize("d", [4, 2048])
def test_all_rows_equal_torch_fidelity(d):
    rng = np.random.default_rng(d)
    x = rng.standard_normal((60, d))
    y = rng.standard_normal((60, d)) + 0.2
    ours = compute_kid(x, y, subset_size=60, num_subsets=2)
    ref = kid_features_to_metric(torch.from_numpy(x), torch.from_numpy(y), kid_subsets=1, kid_subset_size=60,
                                 verbose=False)  # fmt: skip
    assert ours["kid"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-12)
    assert ours["kid"] > 0.01


@pytest.mark.parametrize(("n_real", "n_fake", "subset_size"), [(300, 250, 100), (300, 250, 1000), (40, 90, 40)])
def test_every_subset_equals_torch_fidelity_on_the_same_draw(n_real, n_fake, subset_size):
    rng = np.random.default_rng(n_real + n_fake)
    real = rng.standard_normal((n_real, 16)).astype(np.float32)
    fake = (rng.standard_normal((n_fake, 16)) * 1.2 + 0.1).astype(np.float32)
    num_subsets, seed = 10, 7
    ours = compute_kid(real, fake, subset_size=subset_size, num_subsets=num_subsets, seed=seed)
    m = kid_subset_size(n_real, n_fake, subset_size)
    assert m == min(subset_size, n_real, n_fake)
    real64, fake64 = real.astype(np.float64), fake.astype(np.float64)
    ref = np.array([kernel_mmd(real64[i], fake64[j]) for i, j in drawn_subsets(n_real, n_fake, m, num_subsets, seed)])
    assert ours["kid"] == pytest.approx(ref.mean(), rel=1e-12)
    assert ours["kid_std"] == pytest.approx(ref.std(ddof=1), rel=1e-10)
    # torch-fidelity reports np.std (ddof = 0)
    assert ours["kid_std"] * math.sqrt((num_subsets - 1) / num_subsets) == pytest.approx(ref.std(), rel=1e-10)
    assert ours["kid_std"] > 0


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.2, 0.4, 0.8])
def test_gaussians_match_the_population_value(shift):
    n, d, m = 1000, 8, 250
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d)) + shift
    ours = compute_kid(x, y, subset_size=m, num_subsets=20)
    # the sampling error of the whole sets' estimate, ~ the subsets' spread scaled from m to n rows
    sd = ours["kid_std"] * math.sqrt(m / n)
    assert abs(ours["kid"] - population_kid(shift, d)) < 3 * sd, (ours, population_kid(shift, d))


# ----------------------------------------------------------------------------------------------------
# Properties


def test_equal_distributions_give_both_signs_around_zero_and_a_shift_is_clearly_positive():
    d = 8
    rng = np.random.default_rng(3)
    same = [compute_kid(rng.standard_normal((150, d)), rng.standard_normal((150, d)), num_subsets=2)["kid"]
            for _ in range(12)]  # fmt: skip
    assert min(same) < 0 < max(same)  # unbiased: negative values are legitimate
    assert abs(np.mean(same)) < 0.01
    values = [compute_kid(rng.standard_normal((400, d)), rng.standard_normal((400, d)) + s, subset_size=200,
                          num_subsets=10)["kid"] for s in (0.3, 0.6, 1.2)]  # fmt: skip
    assert values[0] > 3 * max(abs(v) for v in same)
    assert values[0] < values[1] < values[2]
    assert values == pytest.approx([population_kid(s, d) for s in (0.3, 0.6, 1.2)], rel=0.3)


def test_same_seed_gives_identical_results_and_inputs_convert_exactly():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((200, 12)), rng.standard_normal((150, 12)) + 0.1
    a = compute_kid(x, y, subset_size=50, num_subsets=5, seed=3)
    assert compute_kid(x, y, subset_size=50, num_subsets=5, seed=3) == a
    assert compute_kid(torch.from_numpy(x), torch.from_numpy(y), subset_size=50, num_subsets=5, seed=3) == a
    assert compute_kid(x.tolist(), y.tolist(), subset_size=50, num_subsets=5, seed=3) == a
    assert compute_kid(x, y, subset_size=50, num_subsets=5, seed=4) != a
    x32 = x.astype(np.float32)
    assert compute_kid(x32, y, subset_size=50, num_subsets=5, seed=3) == compute_kid(
        x32.astype(np.float64), y, subset_size=50, num_subsets=5, seed=3)  # fmt: skip


@pytest.mark.parametrize(
    ("real", "fake", "kwargs", "message"),
    [
        (np.zeros(10), np.zeros((10, 3)), {}, r"real_features must have shape \(N, D\)"),
        (np.zeros((10, 3)), np.zeros((10, 3, 1)), {}, r"fake_features must have shape \(N, D\)"),
        (np.zeros((10, 0)), np.zeros((10, 0)), {}, r"real_features must have shape \(N, D\) with D >= 1"),
        (np.zeros((10, 3)), np.zeros((10, 4)), {}, "real_features has D=3 but fake_features has D=4"),
        (np.zeros((1, 3)), np.zeros((10, 3)), {}, "real_features has 1 rows; .* at least 2"),
        (np.zeros((10, 3)), np.full((10, 3), np.nan), {}, "fake_features contains non-finite"),
        (np.full((10, 3), np.inf), np.zeros((10, 3)), {}, "real_features contains non-finite"),
        (np.zeros((10, 3)), np.zeros((10, 3)), {"subset_size": 1}, "subset_size must be an integer >= 2, got 1"),
        (np.zeros((10, 3)), np.zeros((10, 3)), {"subset_size": 5.0}, "subset_size must be an integer >= 2"),
        (np.zeros((10, 3)), np.zeros((10, 3)), {"num_subsets": 1}, "num_subsets must be an integer >= 2"),
    ],
)
def test_invalid_input_names_the_problem(real, fake, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_kid(real, fake, **kwargs)
