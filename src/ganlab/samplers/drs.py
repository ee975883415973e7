"""Discriminator Rejection Sampling (DRS) -- Azadi, Olsson, Darrell, Goodfellow & Odena, ICLR 2019 (arXiv 1810.06758).

Algorithm 1 of the paper (as reproduced in shinseung428/DRS_Tensorflow's README; no official code)::

    D*  <- KeepTraining(D)              # calibration: a BCE-trained logit with G frozen (see calibrate_discriminator)
    d_M <- max logit over a burn-in set of generated samples
    while |samples| < N:
        x <- G(z);  d_M <- max(d_M, d(x))                                   # online running max
        F^ = d(x) - d_M - log(1 - exp(d(x) - d_M - eps)) - gamma
        accept x with probability sigmoid(F^)

With gamma = 0 and eps -> 0, sigmoid(F^) = exp(d - d_M) = (p_data / p_g)(x) / M: exact rejection sampling of
p_data when exp(d) is the true density ratio and d_M its maximum (the identity the tests check).

Batch-size invariance. Candidates form one fixed stream: candidate i (i = 0, 1, ...) of run `seed` has latent
`latent_fn([seed * 2**32 + i])` (default `seeded_normal`, so with seed=0 the candidates are the baseline samples
of seeds 0, 1, 2, ... and DRS keeps a subset of them); burn-in sample j uses seed `seed * 2**32 + 2**31 + j`.
The running max is a cumulative max along this stream (as in uber-research/metropolis-hastings-gans
`mhgan/mh.py::rejection_sample`, `D_tilde_M = max(logit(score_max), cummax(D_tilde))`), the acceptance
uniform of candidate i is `derived_uniform([seed * 2**32 + i], "drs/accept", 0)`, and the output is the first n
accepted candidates in stream order -- so `batch_size` changes speed only. (This requires `generator` and
`logit_fn` to be per-sample; bitwise equality across batch sizes also requires their kernels to be
batch-invariant, which holds on the CPU for the toy models in the tests.)

Modes for choosing what to accept (default 'quantile', the pipeline's reading of report 003; see
`ganlab.postprocess`):
- 'percentile': gamma = the `gamma_percentile`-th percentile (numpy, 0-100 scale) of F = F^ + gamma
  over the burn-in set (with the burn-in max), then accept with probability sigmoid(F^). The paper sets gamma
  "dynamically per batch" as a percentile of F; which percentile is not verified. We take 95, Uber's
  `shift_percent=95.0` (the 0.80 in shinseung428's code is the 0.8th percentile -- a bug, not repeated), and we
  compute it once on the burn-in set instead of per batch, because a per-batch percentile would make the
  result depend on the batch size.
- 'fixed': gamma = `gamma` (default 0.0 = textbook rejection sampling).
- 'threshold': deterministic; accept iff sigmoid(F^ with gamma = 0) >= `threshold`. This is our reading of the
  catalogue's "DRS, acceptance threshold 0.7" (report 003 only says "samples are retained based on a rejection
  threshold that aligns with discriminator confidence" and sweeps 0.5...0.9). Since sigmoid(F^) ~= exp(d - d_M),
  it keeps only x with d(x) >= d_M + log(threshold) (within 0.36 nats of the max at 0.7), so acceptance can be
  very low and depends on how extreme the running max is.
- 'confidence': deterministic; accept iff sigmoid(d(x)) >= `threshold` -- the other reading of "discriminator
  confidence": a threshold on D(x) itself (no d_M involved). Meaningful only for a calibrated (BCE) logit.
- 'quantile': deterministic; accept iff d(x) >= the `threshold`-quantile of d over the burn-in set
  (numpy `np.quantile`, linear interpolation, float64), i.e. keep the candidates the discriminator ranks in its
  top (1 - threshold) fraction: acceptance ~= 1 - threshold whatever the logit's scale. A third reading of
  report 003's "threshold that aligns with discriminator confidence", and the one that stays feasible when D
  separates real from generated almost perfectly (then sigmoid(d) >= 0.7 accepts ~nothing; measured on an
  early quick-scale MNIST checkpoint: 2e-4 of candidates after calibration). Rank-based, so a monotone
  increasing calibration head does not change which candidates are kept.

Defaults and their sources: mode 'quantile' (above); burn_in 10,000 (paper value as recalled, not verified [M];
shinseung428 uses 50,000 [3P]); epsilon 1e-6 (Uber [3P]; shinseung428 uses 1e-8); gamma_percentile 95.0 (Uber
[3P]); threshold 0.7 (report 003).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from ganlab.samplers.latent import batch_invariant_sigmoid, derived_uniform, seeded_normal
from ganlab.schema import NonNegativeInt, Number, PositiveFloat, PositiveInt, Strict, validated

DRS_MODES = ("percentile", "fixed", "threshold", "confidence", "quantile")
MAX_RUN_SEED = 2**31 - 1  # seed * 2**32 + index must stay below 2**63
STREAM_SPAN = 2**31  # candidates use indices [0, 2**31), burn-in samples [2**31, 2**32)


class DRSConfig(Strict):
    """DRS options (postprocess method `drs`); sources of the defaults in the module docstring.

    `threshold` is read by the 'threshold', 'confidence' and 'quantile' modes, `gamma_percentile` by 'percentile',
    `gamma` by 'fixed'. `calibration_n` and `stream_seed` are read by the pipeline (`ganlab.postprocess`), not by
    `drs_sample`: the real and the generated samples (each) that `calibrate_discriminator` fits its head on, and
    the candidate stream (`drs_sample`'s `seed`; 0 = the baseline seeds 0, 1, 2, ...)."""

    threshold: Number = Field(0.7, gt=0, lt=1)
    mode: Literal[DRS_MODES] = "quantile"
    burn_in: PositiveInt = Field(10_000, le=STREAM_SPAN)  # samples for the initial d_M (and gamma in 'percentile')
    epsilon: PositiveFloat = 1e-6  # keeps log(1 - exp(d - d_M - eps)) finite at the max
    gamma_percentile: Number = Field(95.0, ge=0, le=100)  # numpy 0-100 scale
    gamma: Number = Field(0.0, allow_inf_nan=False)
    max_candidates: PositiveInt = Field(1_000_000, le=STREAM_SPAN)  # stop with an error after this many candidates
    calibration_n: PositiveInt = 10_000
    stream_seed: NonNegativeInt = Field(0, le=MAX_RUN_SEED)


_DEFAULT = DRSConfig()


@dataclass(frozen=True)
class DRSInfo:
    """What a DRS run did. All counts refer to the candidate stream, not to compute batches."""

    acceptance_rate: float  # n / n_candidates
    n_candidates: int  # stream position of the n-th accepted candidate + 1
    d_M: float  # running max logit at that position
    d_M_burn_in: float  # max logit over the burn-in set
    gamma: float  # the gamma used (0.0 in 'threshold' and 'confidence' modes)
    mode: str
    accepted_seeds: Tensor  # (n,) int64 latent seeds of the accepted candidates, in stream order
    logit_cut: float = math.nan  # 'quantile' mode: the burn-in quantile of d that candidates must reach

    def scalars(self) -> dict[str, float | int | str]:
        """The loggable summary (everything but the seeds)."""
        return {
            "acceptance_rate": self.acceptance_rate,
            "n_candidates": self.n_candidates,
            "d_M": self.d_M,
            "d_M_burn_in": self.d_M_burn_in,
            "gamma": self.gamma,
            "mode": self.mode,
            "logit_cut": self.logit_cut,
        }


def drs_logit(d: Tensor, d_max: Tensor, epsilon: float) -> Tensor:
    """F = d - d_M - log(1 - exp(d - d_M - eps)), elementwise (gamma not subtracted). Requires d <= d_M."""
    u = d - d_max
    return u - torch.log(-torch.expm1(u - epsilon))  # 1 - e^v = -expm1(v), accurate near v = 0


def _logits_in_batches(
    seeds: Tensor,
    latent_fn: Callable[[Tensor, torch.device | str], Tensor],
    generator: Callable[[Tensor], Tensor],
    logit_fn: Callable[[Tensor], Tensor],
    device: torch.device | str,
    batch_size: int,
) -> Tensor:
    """float64 logits d(G(latent_fn(seed))) for each seed, (len(seeds),) on the CPU."""
    out = []
    for start in range(0, len(seeds), batch_size):
        x = generator(latent_fn(seeds[start : start + batch_size], device))
        out.append(logit_fn(x).reshape(-1).double().cpu())
    return torch.cat(out)


@dataclass(frozen=True)
class _Stream:
    """The samples of one DRS run: candidate i has latent seed `base + i`, burn-in sample j `base + 2**31 + j`
    (base = seed * 2**32). Computed `batch_size` at a time, without gradients."""

    base: int
    generator: Callable[[Tensor], Tensor]
    logit_fn: Callable[[Tensor], Tensor]
    latent_fn: Callable[[Tensor, torch.device | str], Tensor]
    device: torch.device | str
    batch_size: int

    def burn_in_logits(self, n: int) -> Tensor:
        """float64 logits of burn-in samples 0..n-1, (n,) on the CPU."""
        seeds = self.base + STREAM_SPAN + torch.arange(n, dtype=torch.int64)
        with torch.no_grad():
            return _logits_in_batches(seeds, self.latent_fn, self.generator, self.logit_fn, self.device,
                                      self.batch_size)

    def candidates(self, start: int, stop: int) -> tuple[Tensor, Tensor, Tensor]:
        """Candidates start..stop-1: latent seeds (b,) int64, samples x (b, ...), float64 logits d (b,) on the CPU."""
        seeds = self.base + torch.arange(start, stop, dtype=torch.int64)  # (b,)
        with torch.no_grad():
            x = self.generator(self.latent_fn(seeds, self.device))
            d = self.logit_fn(x).reshape(-1).double().cpu()  # (b,)
        return seeds, x, d


@dataclass(frozen=True)
class _BurnIn:
    """What the burn-in set fixes for the whole run."""

    d_max: Tensor  # float64 scalar: the initial d_M
    gamma: float  # subtracted from F ('percentile': the burn-in percentile of F; 'fixed': cfg.gamma; else 0.0)
    logit_cut: float  # 'quantile' mode: the `threshold`-quantile of the burn-in logits; nan otherwise


def _burn_in(cfg: DRSConfig, d_burn: Tensor) -> _BurnIn:
    """The initial d_M, gamma and logit cut from the burn-in logits d_burn (burn_in,) float64."""
    d_max_burn = d_burn.max()
    if cfg.mode == "percentile":
        f_burn = drs_logit(d_burn, d_max_burn, cfg.epsilon)
        gamma_used = float(np.percentile(f_burn.numpy(), cfg.gamma_percentile))
    elif cfg.mode == "fixed":
        gamma_used = cfg.gamma
    else:
        gamma_used = 0.0
    logit_cut = float(np.quantile(d_burn.numpy(), cfg.threshold)) if cfg.mode == "quantile" else math.nan
    return _BurnIn(d_max_burn, gamma_used, logit_cut)


def _accept(cfg: DRSConfig, burn: _BurnIn, seeds: Tensor, d: Tensor, d_max: Tensor) -> Tensor:
    """(b,) bool: which of the candidates `seeds` (b,) with logits d (b,) and running max d_max (b,) are accepted."""
    f_hat = drs_logit(d, d_max, cfg.epsilon) - burn.gamma
    if cfg.mode in ("percentile", "fixed"):
        u = derived_uniform(seeds, "drs/accept", 0, (), "cpu")  # (b,) float64 in (0, 1)
        return u <= batch_invariant_sigmoid(f_hat)
    if cfg.mode == "threshold":
        return batch_invariant_sigmoid(f_hat) >= cfg.threshold
    if cfg.mode == "confidence":
        return batch_invariant_sigmoid(d) >= cfg.threshold
    return d >= burn.logit_cut  # 'quantile'


def _first_accepted(n: int, cfg: DRSConfig, burn: _BurnIn, stream: _Stream) -> tuple[Tensor, Tensor, int, float]:
    """Walk the candidate stream until n are accepted: (x (n, ...), their seeds (n,), n_candidates, d_M there).
    RuntimeError after `cfg.max_candidates` candidates."""
    running_max = burn.d_max
    kept_x: list[Tensor] = []
    kept_seeds: list[Tensor] = []
    n_kept = 0
    start = 0
    while n_kept < n:
        if start >= cfg.max_candidates:
            raise RuntimeError(
                f"DRS: only {n_kept} of {n} samples accepted after max_candidates={cfg.max_candidates} candidates "
                f"(mode={cfg.mode!r}, gamma={burn.gamma:.4g}, d_M={float(running_max):.4g}); raise max_candidates "
                "or use a less selective mode/threshold"
            )
        stop = min(start + stream.batch_size, cfg.max_candidates)
        cand_seeds, x, d = stream.candidates(start, stop)
        d_max = torch.maximum(torch.cummax(d, dim=0).values, running_max)  # running max along the stream, (b,)
        running_max = d_max[-1]
        idx = _accept(cfg, burn, cand_seeds, d, d_max).nonzero().squeeze(1)[: n - n_kept]  # first accepted in order
        if len(idx):
            kept_x.append(x[idx.to(x.device)])
            kept_seeds.append(cand_seeds[idx])
            n_kept += len(idx)
            last = int(idx[-1])
            last_d_max = float(d_max[last])
            n_candidates = start + last + 1
        start = stop
    return torch.cat(kept_x), torch.cat(kept_seeds), n_candidates, last_d_max


def drs_sample(
    n: int,
    generator: Callable[[Tensor], Tensor],
    logit_fn: Callable[[Tensor], Tensor],
    *,
    nz: int | None,
    seed: int,
    burn_in: int = _DEFAULT.burn_in,
    epsilon: float = _DEFAULT.epsilon,
    mode: str = _DEFAULT.mode,
    gamma_percentile: float = _DEFAULT.gamma_percentile,
    gamma: float = _DEFAULT.gamma,
    threshold: float = _DEFAULT.threshold,
    max_candidates: int = _DEFAULT.max_candidates,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
    latent_fn: Callable[[Tensor, torch.device | str], Tensor] | None = None,
) -> tuple[Tensor, DRSInfo]:
    """Draw n samples from G refined by DRS; returns (x (n, ...) as produced by `generator`, DRSInfo).

    `logit_fn(x)` -> (B,) must be a calibrated log density ratio log p_data/p_g (a BCE-trained logit, or a
    hinge/WGAN critic passed through `calibrate_discriminator`). `latent_fn(seeds, device)` -> latents for a
    1-D int64 seed tensor; default `seeded_normal(seeds, (nz,), device)` (then `nz` is required).
    `seed` in [0, 2**31 - 1] selects the candidate stream; `batch_size` affects speed only.
    Raises RuntimeError if fewer than n candidates are accepted among the first `max_candidates`.
    """
    cfg = validated(DRSConfig, burn_in=burn_in, epsilon=epsilon, mode=mode, gamma_percentile=gamma_percentile,
                    gamma=gamma, threshold=threshold, max_candidates=max_candidates)  # fmt: skip
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    if not (0 <= seed <= MAX_RUN_SEED):
        raise ValueError(f"seed: must be in [0, 2**31 - 1], got {seed}")
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    if latent_fn is None:
        if nz is None:
            raise ValueError("nz: required when latent_fn is not given")
        latent_fn = lambda s, dev: seeded_normal(s, (nz,), dev)  # noqa: E731
    stream = _Stream(seed * 2**32, generator, logit_fn, latent_fn, device, batch_size)
    burn = _burn_in(cfg, stream.burn_in_logits(cfg.burn_in))  # (burn_in,) logits -> d_M, gamma, logit cut
    x, accepted_seeds, n_candidates, d_M = _first_accepted(n, cfg, burn, stream)
    info = DRSInfo(
        acceptance_rate=n / n_candidates,
        n_candidates=n_candidates,
        d_M=d_M,
        d_M_burn_in=float(burn.d_max),
        gamma=burn.gamma,
        mode=cfg.mode,
        accepted_seeds=accepted_seeds,
        logit_cut=burn.logit_cut,
    )
    return x, info


# ------------------------------------------------------------------------------------------------------------
# Calibration: DRS needs a BCE-trained logit (KeepTraining in Alg. 1). For hinge / WGAN critics we fit a
# logistic head t = a * d(x) + b on real vs generated samples with G and D frozen (the 2-parameter version of
# shinseung428's extra sigmoid-cross-entropy FC head on SAGAN's hinge D [3P]). The head is monotone in d, so it
# rescales a critic into a log density ratio but cannot fix a critic whose ordering of samples is wrong;
# continued training of the whole D is the training code's job.


@dataclass(frozen=True)
class LogisticHead:
    """Fitted calibration head: calibrated logit = a * d(x) + b."""

    a: float
    b: float
    loss: float  # class-balanced BCE at the optimum (nats); log 2 = 0.693 means no separation
    iterations: int
    converged: bool


def fit_logistic_head(
    real_logits: Tensor, fake_logits: Tensor, *, max_iter: int = 100, tol: float = 1e-10
) -> LogisticHead:
    """Fit (a, b) minimising the class-balanced BCE of a*d + b (real -> 1, fake -> 0) by damped Newton, float64.

    Class-balanced (each class weighted 1/2, whatever the counts) so that the optimum estimates
    log p_data(x) / p_g(x) rather than that plus log(n_real / n_fake). Deterministic; inputs are 1-D.
    `converged` is False if the data are (nearly) separable and the optimum runs off to infinity.
    """
    dr = real_logits.detach().reshape(-1).double().cpu()
    df = fake_logits.detach().reshape(-1).double().cpu()
    if len(dr) == 0 or len(df) == 0:
        raise ValueError("fit_logistic_head: need at least one real and one fake logit")
    # standardise d for conditioning; map the head back at the end
    both = torch.cat([dr, df])
    mu, sd = both.mean(), both.std().clamp_min(1e-12)
    feats = torch.stack([(both - mu) / sd, torch.ones_like(both)], dim=1)  # (N, 2)
    y = torch.cat([torch.ones_like(dr), torch.zeros_like(df)])
    w = torch.cat([torch.full_like(dr, 0.5 / len(dr)), torch.full_like(df, 0.5 / len(df))])  # sums to 1

    def loss_of(theta: Tensor) -> Tensor:
        t = feats @ theta
        return (w * torch.nn.functional.binary_cross_entropy_with_logits(t, y, reduction="none")).sum()

    theta = torch.zeros(2, dtype=torch.float64)
    loss = loss_of(theta)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        p = torch.sigmoid(feats @ theta)
        grad = feats.T @ (w * (p - y))
        hess = feats.T @ (feats * (w * p * (1 - p))[:, None]) + 1e-12 * torch.eye(2, dtype=torch.float64)
        step = torch.linalg.solve(hess, grad)
        lr, cand, cand_loss = 1.0, theta, loss
        while lr > 1e-8:  # backtracking: Newton can overshoot far from the optimum
            cand = theta - lr * step
            cand_loss = loss_of(cand)
            if cand_loss <= loss:
                break
            lr *= 0.5
        if cand_loss <= loss:
            decrease = float(loss - cand_loss)
            theta, loss = cand, cand_loss
        else:
            decrease = 0.0  # no descent possible: at the optimum up to rounding
        if decrease < tol:
            converged = float(grad.abs().max()) < 1e-6
            break
    a_std, b_std = float(theta[0]), float(theta[1])
    a = a_std / float(sd)
    b = b_std - a * float(mu)
    return LogisticHead(a=a, b=b, loss=float(loss), iterations=it, converged=converged)


def calibrate_discriminator(
    logit_fn: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    batch_size: int = 1024,
    max_iter: int = 100,
) -> tuple[Callable[[Tensor], Tensor], LogisticHead]:
    """Calibrate a critic on real vs generated samples; returns (x -> a*d(x) + b, the fitted head).

    `real` and `fake` are sample tensors (N, ...) in the discriminator's input space (fake drawn from the
    frozen G); they should be held out from D's training set where possible, since a D that memorised its
    training reals is over-confident on them. The returned logit_fn is what `drs_sample` expects.
    """
    def all_logits(x: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.cat(
                [logit_fn(x[i : i + batch_size]).reshape(-1).double().cpu() for i in range(0, len(x), batch_size)]
            )

    head = fit_logistic_head(all_logits(real), all_logits(fake), max_iter=max_iter)

    def calibrated(x: Tensor) -> Tensor:
        return head.a * logit_fn(x) + head.b

    return calibrated, head
