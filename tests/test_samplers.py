"""Tests for ganlab.samplers on a toy with known densities (CPU, seconds).

Toy: p_g = N(0, 1) (G = identity on a 1-D latent), p_data = N(MU, SD^2), and the discriminator is the EXACT
log density ratio r(x) = log p_data(x) - log p_g(x). Then
- DRS with gamma = 0 and the exact max must output p_data (exact rejection sampling);
- DDLS's target exp(-E(z)) with E = z^2/2 - r(z) is p_data itself, and r is quadratic, so the ULA chain is a
  linear Gaussian recursion whose mean and variance are known in closed form;
- DGflow's drift grad r is affine, so its mean/variance recursion is also closed-form.
Distributional checks use scipy.stats.kstest against the true CDF; every "accepts" check has a twin that must
reject, so a test that cannot fail is caught.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ganlab.samplers.ddls import ddls_energy, ddls_refine
from ganlab.samplers.dgflow import dgflow_refine
from ganlab.samplers.drs import calibrate_discriminator, drs_logit, drs_sample, fit_logistic_head
from ganlab.samplers.latent import derived_normal, derived_uniform, seeded_normal
from ganlab.samplers.truncation import truncated_normal
from ganlab.samplers.latent import _GOLDEN, _mix, _stream_words, batch_invariant_sigmoid, purpose_key

MU, SD = 0.5, 0.8
ALPHA = 1.0 - 1.0 / SD**2  # r'(x) = ALPHA * x + BETA
BETA = MU / SD**2
X_STAR = -BETA / ALPHA  # argmax r = 0.5 / 0.36
P_DATA = stats.norm(MU, SD)
KS_ALPHA = 0.01


def identity(z: torch.Tensor) -> torch.Tensor:
    return z


def log_ratio(x: torch.Tensor) -> torch.Tensor:
    """Exact log N(x; MU, SD^2) - log N(x; 0, 1) of the first coordinate, (B,)."""
    x = x.reshape(len(x), -1)[:, 0]
    return (-0.5 * ((x - MU) / SD) ** 2 - math.log(SD)) - (-0.5 * x**2)


R_MAX = float(log_ratio(torch.tensor([[X_STAR]], dtype=torch.float64)))  # log M = 0.5704


# ---------------------------------------------------------------------------------------------- latent.py


def test_seeded_normal_is_torch_randn_of_its_own_generator():
    z = seeded_normal([7, 123456789012], (3, 2), "cpu")
    for row, s in zip(z, [7, 123456789012]):
        torch.testing.assert_close(row, torch.randn((3, 2), generator=torch.Generator().manual_seed(s)), rtol=0, atol=0)


def test_seeded_normal_row_independent_of_position_and_batch():
    big = seeded_normal(list(range(100)), (10,), "cpu")
    shuffled_seeds = [42, 3, 99, 0]
    small = seeded_normal(torch.tensor(shuffled_seeds), (10,), "cpu")
    torch.testing.assert_close(small, big[shuffled_seeds], rtol=0, atol=0)
    assert torch.equal(seeded_normal([5], (10,), "cpu")[0], big[5])
    # different seeds differ (all pairs among 100 rows)
    dist = torch.cdist(big, big) + torch.eye(100)
    assert float(dist.min()) > 0.1


def test_seeded_normal_rejects_negative_and_float_seeds():
    with pytest.raises(ValueError, match="non-negative"):
        seeded_normal([1, -2], (3,), "cpu")
    with pytest.raises(ValueError, match="integer"):
        seeded_normal(torch.tensor([1.0]), (3,), "cpu")


def _splitmix64_reference(state: int, n: int) -> list[int]:
    """Vigna's splitmix64.c in plain Python integers (unsigned)."""
    mask, out = 2**64 - 1, []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(z ^ (z >> 31))
    return out


def _finaliser_reference(z: int) -> int:
    mask = 2**64 - 1
    z &= mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_counter_stream_matches_splitmix64_reference():
    # published test vector (seed 1234567), e.g. Rosetta Code "Pseudo-random numbers/Splitmix64"
    words = _mix(torch.tensor([1234567]) + torch.arange(1, 6) * _GOLDEN)
    expected = [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431,
                16408922859458223821]  # fmt: skip
    assert [w % 2**64 for w in words.tolist()] == expected
    # the keyed stream against a pure-Python re-derivation, including a seed near 2**63
    for seed, purpose, step in [(0, "a", 0), (2**63 - 1, "ddls/noise", 999), (12345, "drs/accept", 7)]:
        key = _finaliser_reference(seed ^ (purpose_key(purpose) % 2**64))
        key = _finaliser_reference(key + 0x9E3779B97F4A7C15 * (step + 1))
        got = _stream_words(torch.tensor([seed]), purpose, step, 6, "cpu")[0]
        assert [w % 2**64 for w in got.tolist()] == _splitmix64_reference(key, 6)


def test_derived_streams_batch_invariant_and_distinct():
    seeds = torch.arange(50) * 1_000_003
    full = derived_normal(seeds, "p", 3, (4, 5), "cpu")
    assert full.shape == (50, 4, 5)
    torch.testing.assert_close(derived_normal(seeds[[17]], "p", 3, (4, 5), "cpu")[0], full[17], rtol=0, atol=0)
    assert not torch.allclose(derived_normal(seeds, "p", 4, (4, 5), "cpu"), full)  # other step
    assert not torch.allclose(derived_normal(seeds, "q", 3, (4, 5), "cpu"), full)  # other purpose
    assert not torch.allclose(full[0], full[1])  # other seed
    u = derived_uniform(seeds, "p", 0, (7,), "cpu")
    assert u.dtype == torch.float64 and float(u.min()) > 0 and float(u.max()) < 1
    torch.testing.assert_close(derived_uniform(seeds[3:5], "p", 0, (7,), "cpu"), u[3:5], rtol=0, atol=0)


def test_derived_marginals_are_standard_normal_and_uniform():
    z = derived_normal(torch.arange(2000), "marginal", 0, (10,), "cpu").double().reshape(-1).numpy()
    assert stats.kstest(z, "norm").pvalue > KS_ALPHA
    assert stats.kstest(z, stats.norm(0, 1.05).cdf).pvalue < KS_ALPHA  # the test has power against a 5 % scale error
    u = derived_uniform(torch.arange(2000), "marginal", 0, (10,), "cpu").reshape(-1).numpy()
    assert stats.kstest(u, "uniform").pvalue > KS_ALPHA
    # neighbouring words are uncorrelated (Box-Muller pairs them)
    assert abs(np.corrcoef(u[0::2], u[1::2])[0, 1]) < 4 / math.sqrt(len(u) / 2)


def test_batch_invariant_sigmoid_is_sigmoid_and_batch_invariant():
    for dtype in (torch.float32, torch.float64):
        x = torch.linspace(-40, 40, 3001, dtype=dtype)
        torch.testing.assert_close(batch_invariant_sigmoid(x), torch.sigmoid(x))  # dtype-default tolerances
        one_by_one = torch.cat([batch_invariant_sigmoid(x[i : i + 1]) for i in range(len(x))])
        torch.testing.assert_close(one_by_one, batch_invariant_sigmoid(x), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------- truncation


@pytest.mark.parametrize("psi", [2.0, 0.9])
def test_truncated_normal_bounds_and_marginal(psi):
    z = truncated_normal(torch.arange(1000), (50,), psi, "cpu")
    assert z.shape == (1000, 50) and z.dtype == torch.float32
    assert float(z.abs().max()) <= psi
    flat = z.double().reshape(-1).numpy()  # 50k independent coordinates
    assert stats.kstest(flat, stats.truncnorm(-psi, psi).cdf).pvalue > KS_ALPHA
    assert stats.kstest(flat, "norm").pvalue < KS_ALPHA  # untruncated N(0, 1) is rejected
    # the TF-Hub convention psi * truncnorm(-2, 2) is a different law and is rejected too
    assert stats.kstest(flat, stats.truncnorm(-2, 2, scale=psi).cdf).pvalue < KS_ALPHA


def test_truncated_normal_per_seed_and_shares_coordinates_with_baseline():
    seeds = torch.arange(64) + 1000
    z = truncated_normal(seeds, (100,), 0.9, "cpu")
    for i in [0, 1, 37]:
        torch.testing.assert_close(truncated_normal(seeds[[i]], (100,), 0.9, "cpu")[0], z[i], rtol=0, atol=0)
    base = seeded_normal(seeds, (100,), "cpu")
    inside = base.abs() <= 0.9
    assert torch.equal(z[inside], base[inside])  # first draw is the baseline latent
    assert not torch.equal(z, base)
    assert torch.equal(truncated_normal(seeds, (100,), math.inf, "cpu"), base)
    with pytest.raises(ValueError, match="psi"):
        truncated_normal(seeds, (3,), 0.0, "cpu")


# ---------------------------------------------------------------------------------------------- DRS


def _check_matches_p_data(x: np.ndarray) -> None:
    n = len(x)
    assert abs(x.mean() - MU) < 4 * SD / math.sqrt(n)
    assert abs(x.std() - SD) < 4 * SD / math.sqrt(2 * n)  # SE of a normal std = sd / sqrt(2n)
    assert stats.kstest(x, P_DATA.cdf).pvalue > KS_ALPHA


def test_drs_gamma0_is_exact_rejection_sampling():
    n = 3000
    x, info = drs_sample(n, identity, log_ratio, nz=1, seed=0, mode="fixed", gamma=0.0, batch_size=512)
    assert x.shape == (n, 1)
    assert info.d_M == pytest.approx(R_MAX, abs=1e-4)  # burn-in found the true max
    _check_matches_p_data(x[:, 0].double().numpy())
    # the candidates themselves (seeds 0, 1, ...) are N(0, 1) and must be rejected as p_data
    raw = seeded_normal(torch.arange(n), (1,), "cpu")[:, 0].double().numpy()
    assert stats.kstest(raw, P_DATA.cdf).pvalue < KS_ALPHA
    # acceptance rate = 1 / M, within a binomial tolerance
    p = math.exp(-R_MAX)
    assert abs(info.acceptance_rate - p) < 4 * math.sqrt(p * (1 - p) / info.n_candidates)
    # accepted samples are a subset of the baseline stream: seed=0 -> candidate seeds 0, 1, 2, ...
    torch.testing.assert_close(x, seeded_normal(info.accepted_seeds, (1,), "cpu"), rtol=0, atol=0)
    assert int(info.accepted_seeds[-1]) == info.n_candidates - 1


@pytest.mark.parametrize("mode", ["fixed", "percentile", "threshold"])
def test_drs_identical_at_batch_size_1_and_64(mode):
    kw = dict(nz=1, seed=3, mode=mode, burn_in=500)
    x1, i1 = drs_sample(40, identity, log_ratio, batch_size=1, **kw)
    x64, i64 = drs_sample(40, identity, log_ratio, batch_size=64, **kw)
    torch.testing.assert_close(x1, x64, rtol=0, atol=0)
    assert torch.equal(i1.accepted_seeds, i64.accepted_seeds)
    assert i1.scalars() == i64.scalars()


def test_drs_percentile_gamma_is_numpy_percentile_of_burn_in_F():
    _, info = drs_sample(50, identity, log_ratio, nz=1, seed=5, mode="percentile", gamma_percentile=95.0,
                         burn_in=2000)  # fmt: skip
    # independent recomputation from the documented burn-in seeds seed * 2**32 + 2**31 + j
    burn = seeded_normal(5 * 2**32 + 2**31 + torch.arange(2000), (1,), "cpu")
    d = log_ratio(burn).double()
    f = drs_logit(d, d.max(), 1e-6).numpy()
    assert info.gamma == pytest.approx(np.percentile(f, 95.0), rel=1e-12)
    assert info.gamma > np.percentile(f, 0.80) + 1.0  # not the 0.8th-percentile bug
    # about (100 - 95) % of burn-in F values lie above gamma, so acceptance is well below gamma=0's 1/M
    assert info.acceptance_rate < 0.5 * math.exp(-R_MAX)


def test_drs_threshold_and_confidence_modes_obey_their_rule():
    x, info = drs_sample(300, identity, log_ratio, nz=1, seed=1, mode="threshold", threshold=0.7)
    assert info.d_M == info.d_M_burn_in  # max known after burn-in, so one d_M applies to every candidate
    d = log_ratio(x).double()
    assert float(torch.sigmoid(drs_logit(d, torch.tensor(info.d_M, dtype=torch.float64), 1e-6)).min()) >= 0.7
    # rejected candidates (stream positions not accepted) are all below the threshold
    all_seeds = torch.arange(info.n_candidates) + 1 * 2**32
    d_all = log_ratio(seeded_normal(all_seeds, (1,), "cpu")).double()
    rejected = ~torch.isin(all_seeds, info.accepted_seeds)
    assert float(torch.sigmoid(drs_logit(d_all[rejected], torch.tensor(info.d_M).double(), 1e-6)).max()) < 0.7
    # a higher threshold concentrates the samples closer to argmax r (the precision side of the trade-off)
    x9, _ = drs_sample(300, identity, log_ratio, nz=1, seed=1, mode="threshold", threshold=0.9)
    assert float((x9 - X_STAR).abs().mean()) < float((x - X_STAR).abs().mean())

    xc, _ = drs_sample(300, identity, log_ratio, nz=1, seed=1, mode="confidence", threshold=0.6)
    assert float(torch.sigmoid(log_ratio(xc)).min()) >= 0.6


def test_drs_errors():
    with pytest.raises(RuntimeError, match="max_candidates"):
        # sigmoid(d) >= 0.7 needs d >= 0.85 > max r = 0.57: nothing is ever accepted
        drs_sample(5, identity, log_ratio, nz=1, seed=0, mode="confidence", threshold=0.7, max_candidates=3000)
    with pytest.raises(ValueError, match="allowed: percentile, fixed, threshold, confidence"):
        drs_sample(5, identity, log_ratio, nz=1, seed=0, mode="thresh")
    with pytest.raises(ValueError, match="gamma_percentile"):
        drs_sample(5, identity, log_ratio, nz=1, seed=0, gamma_percentile=0.8 * 1000)
    with pytest.raises(ValueError, match="nz"):
        drs_sample(5, identity, log_ratio, nz=None, seed=0)


# ---------------------------------------------------------------------------------------------- calibration


def _toy_real_fake(n_real: int, n_fake: int) -> tuple[torch.Tensor, torch.Tensor]:
    real = MU + SD * seeded_normal(torch.arange(n_real) + 10**9, (1,), "cpu").double()
    fake = seeded_normal(torch.arange(n_fake), (1,), "cpu").double()
    return real, fake


def test_calibration_recovers_scale_and_offset_of_a_misscaled_logit():
    real, fake = _toy_real_fake(60_000, 20_000)  # unequal counts: the fit must be class-balanced
    bad = lambda x: 3.0 * log_ratio(x) + 1.0  # noqa: E731
    calibrated, head = calibrate_discriminator(bad, real, fake)
    assert head.converged
    # standard errors from the Fisher information of the well-specified model t = a*d + b
    d = torch.cat([bad(real), bad(fake)])
    p = torch.sigmoid(head.a * d + head.b)
    w = torch.cat([torch.full((60_000,), 0.5 / 60_000), torch.full((20_000,), 0.5 / 20_000)]).double()
    X = torch.stack([d, torch.ones_like(d)], 1)
    info = X.T @ (X * (w * p * (1 - p))[:, None])
    # per-class sampling variance of the weighted score: sum_i w_i^2 var(score_i) ~ info / n_eff
    n_eff = 1.0 / float((w**2).sum())
    se = torch.sqrt(torch.diag(torch.linalg.inv(info)) / n_eff)
    assert abs(head.a - 1 / 3) < 4 * float(se[0])
    assert abs(head.b + 1 / 3) < 4 * float(se[1])
    torch.testing.assert_close(calibrated(real[:5]), head.a * bad(real[:5]) + head.b)
    # independent reference: scikit-learn's balanced, unpenalised logistic regression on the same logits
    from sklearn.linear_model import LogisticRegression

    d_np = d.numpy()[:, None]
    y = np.r_[np.ones(60_000), np.zeros(20_000)]
    ref = LogisticRegression(C=1e12, class_weight="balanced", tol=1e-10, max_iter=1000).fit(d_np, y)  # C huge: unpenalised
    assert head.a == pytest.approx(ref.coef_[0, 0], rel=1e-4)
    assert head.b == pytest.approx(ref.intercept_[0], abs=1e-4)
    # an unbalanced fit would be off by log(60k/20k) in b: the balanced one is not
    assert abs(head.b - (-1 / 3 + math.log(3))) > 0.5


def test_drs_needs_calibration_and_gets_it():
    bad = lambda x: 3.0 * log_ratio(x) + 1.0  # noqa: E731
    kw = dict(nz=1, seed=2, mode="fixed", gamma=0.0, batch_size=1024)
    x_bad, _ = drs_sample(2000, identity, bad, **kw)
    assert stats.kstest(x_bad[:, 0].double().numpy(), P_DATA.cdf).pvalue < KS_ALPHA
    calibrated, _ = calibrate_discriminator(bad, *_toy_real_fake(20_000, 20_000))
    x_cal, _ = drs_sample(2000, identity, calibrated, **kw)
    _check_matches_p_data(x_cal[:, 0].double().numpy())


def test_fit_logistic_head_identity_on_an_exact_log_ratio():
    real, fake = _toy_real_fake(30_000, 30_000)
    head = fit_logistic_head(log_ratio(real), log_ratio(fake))
    assert head.a == pytest.approx(1.0, abs=0.06) and head.b == pytest.approx(0.0, abs=0.03)
    assert head.loss < math.log(2)


# ---------------------------------------------------------------------------------------------- DGflow


def _gaussian_kl_to_p_data(x: np.ndarray) -> float:
    """KL(N(mean, var of x) || p_data): the KL estimate for Gaussian-shaped samples."""
    m, s = x.mean(), x.std()
    return math.log(SD / s) + (s**2 + (m - MU) ** 2) / (2 * SD**2) - 0.5


@pytest.mark.parametrize("steps", [5, 25])
def test_dgflow_follows_the_closed_form_recursion(steps):
    n, eta, gamma = 4000, 0.1, 0.01
    seeds = torch.arange(n)
    z0 = seeded_normal(seeds, (1,), "cpu").double()
    z = dgflow_refine(z0, identity, log_ratio, seeds=seeds, steps=steps)
    # z <- z + eta * (ALPHA z + BETA) + sqrt(2 eta gamma) xi: linear recursion for mean and variance
    m, v = float(z0.mean()), float(z0.var())  # start from the empirical moments: only the noise is left random
    for _ in range(steps):
        m, v = m + eta * (ALPHA * m + BETA), (1 + eta * ALPHA) ** 2 * v + 2 * eta * gamma
    x = z[:, 0].numpy()
    assert abs(x.mean() - m) < 4 * math.sqrt(v / n)
    assert abs(x.var() - v) < 6 * v * math.sqrt(2 / n)
    assert stats.kstest(x, stats.norm(m, math.sqrt(v)).cdf).pvalue > KS_ALPHA


def test_dgflow_moves_towards_p_data_early_and_is_mode_seeking_late():
    n = 4000
    seeds = torch.arange(n)
    z0 = seeded_normal(seeds, (1,), "cpu")
    kl0 = _gaussian_kl_to_p_data(z0[:, 0].double().numpy())  # 0.25
    z5 = dgflow_refine(z0, identity, log_ratio, seeds=seeds, steps=5)[:, 0].double().numpy()
    assert _gaussian_kl_to_p_data(z5) < 0.25 * kl0
    assert 0.2 < z5.mean() < MU + 0.1  # moved towards MU without overshooting
    assert np.mean(log_ratio(torch.from_numpy(z5)[:, None]).numpy()) > np.mean(log_ratio(z0).numpy())
    # with d fixed and no prior term (official code) 25 steps overshoot towards argmax r = 1.39
    z25 = dgflow_refine(z0, identity, log_ratio, seeds=seeds)[:, 0].double().numpy()
    assert MU < z25.mean() < X_STAR


@pytest.mark.parametrize("f_div", ["logD", "JS"])
def test_dgflow_one_step_matches_the_official_formula(f_div):
    seeds = torch.arange(10) + 77
    z0 = seeded_normal(seeds, (1,), "cpu").double()
    z1 = dgflow_refine(z0, identity, log_ratio, seeds=seeds, f_div=f_div, eta=0.3, gamma=0.02, steps=1)
    d = log_ratio(z0)
    s = 1 / (1 + d.exp()) if f_div == "logD" else 1 / (1 + 1 / d.exp())  # clear-nus/DGflow _velocity
    grad = ALPHA * z0 + BETA
    xi = derived_normal(seeds, "dgflow/noise", 1, (1,), "cpu", torch.float64)
    torch.testing.assert_close(z1, z0 + 0.3 * s[:, None] * grad + math.sqrt(2 * 0.3) * math.sqrt(0.02) * xi)
    with pytest.raises(ValueError, match="allowed: KL, logD, JS"):
        dgflow_refine(z0, identity, log_ratio, seeds=seeds, f_div="kl")


# ---------------------------------------------------------------------------------------------- DDLS


def test_ddls_samples_p_data_and_lowers_the_energy():
    n = 4000
    seeds = torch.arange(n)
    z0 = seeded_normal(seeds, (1,), "cpu").double()
    z = ddls_refine(z0, identity, log_ratio, seeds=seeds, step_size=0.01, steps=1000)
    x = z[:, 0].numpy()
    # ULA on E = (z - MU)^2 / (2 SD^2) + c: z <- a z + (eps/2) MU / SD^2 + sqrt(eps) n, a = 1 - eps / (2 SD^2)
    a = 1 - 0.01 / (2 * SD**2)
    v_stat = 0.01 / (1 - a**2)  # 0.6425 vs SD^2 = 0.64: the O(eps) ULA bias
    assert abs(x.mean() - MU) < 4 * math.sqrt(v_stat / n)
    assert abs(x.var() - v_stat) < 6 * v_stat * math.sqrt(2 / n)
    assert stats.kstest(x, P_DATA.cdf).pvalue > KS_ALPHA
    e0 = ddls_energy(z0, identity, log_ratio).mean()
    e1 = ddls_energy(z, identity, log_ratio).mean()
    assert float(e1) < float(e0) - 0.3  # 0.75 -> 0.28 in expectation
    with torch.no_grad():  # gradients are enabled locally
        z_ng = ddls_refine(z0[:10], identity, log_ratio, seeds=seeds[:10], steps=3)
    torch.testing.assert_close(z_ng, ddls_refine(z0[:10], identity, log_ratio, seeds=seeds[:10], steps=3))


def test_ddls_decay_follows_studiogan_schedule():
    n, steps, eps, decay, every = 4000, 400, 0.05, 0.3, 100
    seeds = torch.arange(n)
    z0 = seeded_normal(seeds, (1,), "cpu").double()
    z = ddls_refine(z0, identity, log_ratio, seeds=seeds, step_size=eps, steps=steps, decay=decay, decay_every=every)
    m, v, rate, scaler = float(z0.mean()), float(z0.var()), eps, 1.0
    for t in range(steps):
        a = 1 - rate / (2 * SD**2)
        m, v = a * m + 0.5 * rate * MU / SD**2, a**2 * v + rate * scaler**2
        if (t + 1) % every == 0:
            rate, scaler = rate * decay, scaler * decay
    x = z[:, 0].numpy()
    assert v < 0.2 * SD**2  # annealed: much narrower than p_data
    assert abs(x.var() - v) < 6 * v * math.sqrt(2 / n)
    assert abs(x.mean() - m) < 4 * math.sqrt(v / n)
    assert abs(x.var() - SD**2) > 0.3  # and therefore not p_data


def test_ddls_prior_energy_hook_targets_a_mixture_component():
    # d = 0 and G = identity: DDLS samples exp(-prior_energy) = N(mu_k, sigma_k^2) for a component prior
    mu_k, sigma_k, n = 2.0, 0.5, 4000
    seeds = torch.arange(n)
    energy = lambda z: ((z - mu_k) ** 2).flatten(1).sum(1) / (2 * sigma_k**2)  # noqa: E731
    z0 = seeded_normal(seeds, (1,), "cpu").double()
    z = ddls_refine(z0, identity, lambda x: torch.zeros(len(x), dtype=x.dtype), seeds=seeds, step_size=0.01,
                    steps=1000, prior_energy=energy)[:, 0].numpy()  # fmt: skip
    assert abs(z.mean() - mu_k) < 0.05 and abs(z.std() - sigma_k) < 0.03
    assert abs(z.mean()) > 1.5  # the default prior would have kept it near 0


# ---------------------------------------------------------------------------------------------- invariance


def test_refiners_identical_at_batch_size_1_and_64():
    seeds = torch.arange(64) + 500
    z0 = seeded_normal(seeds, (3,), "cpu")
    for refine in (
        lambda z, s: dgflow_refine(z, identity, log_ratio, seeds=s, f_div="JS", steps=7),
        lambda z, s: ddls_refine(z, identity, log_ratio, seeds=s, steps=7, decay=0.5, decay_every=3),
    ):
        batched = refine(z0, seeds)
        single = torch.cat([refine(z0[i : i + 1], seeds[i : i + 1]) for i in range(64)])
        torch.testing.assert_close(single, batched, rtol=0, atol=0)
        assert not torch.equal(batched, z0)
