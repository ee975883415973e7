"""Per-sample latents and per-sample auxiliary noise, keyed by integer seeds so that nothing depends on batching.

Two sources of randomness, both pure functions of integer keys:

1. `seeded_normal(seeds, shape, device)` -- the latent of sample `s` is
   `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s))`, moved to `device`
   (the per-image-seed convention of NVlabs/edm). One CPU generator per seed: ~6 us per seed on a laptop CPU,
   i.e. ~0.06 s for 10k latents of size 100. The value of sample `s` is the same at any batch size, in any
   position, and on any device (it is always drawn on the CPU).

2. `derived_uniform` / `derived_normal(seeds, purpose, step, shape, device)` -- auxiliary randomness that a
   post-processing method consumes per sample (Langevin noise at step t, the DRS acceptance uniform, DRS
   burn-in latents). These are drawn from a vectorised counter-based generator: element `c` of the stream
   `(seed, purpose, step)` is the `c`-th output of SplitMix64 (Steele, Lea & Flood 2014, "Fast splittable
   pseudorandom number generators"; the constants are the ones in Vigna's reference `splitmix64.c`) seeded
   with the key `mix(mix(seed XOR H(purpose)) + step * golden)`, where `H` is the first 8 bytes of the
   BLAKE2b digest of the purpose string (Python's `hash` is salted per process, so it cannot be used). The
   64-bit words are computed with wrapping int64 tensor arithmetic on `device` (10k x 100 normals: ~0.1 s on
   a 2-core CPU); the words are checked against a pure-Python SplitMix64 in the tests (CPU; the CUDA path uses
   the same wrapping int64 ops but was not tested here). Uniforms take the top 53 bits (float64), normals use
   Box-Muller on two words per element (float64, then cast), whose log/cos may differ by an ulp across devices. This stream is not `torch.randn`: the same seed
   gives unrelated values in `seeded_normal` and in `derived_normal`, and different purposes/steps give
   unrelated streams.

Gaussian-mixture priors (GM-GAN, z~ = mu_k + sigma_k * z). The samplers in this package only ever see a
standard-normal `z`; the affine map (and the choice of component k, and any class label) belongs in the
`generator` closure, e.g. `lambda z: G(mu[k] + sigma[k] * z)` with `k` fixed per sample. Consequences:

- hard truncation (`truncation.py`) truncates the standard-normal `z` *before* the affine map, i.e. it keeps
  each coordinate of z~ within `psi * sigma_k` of its component mean;
- DGflow and DDLS move `z`; DDLS's default prior energy `||z||^2 / 2` is then exactly the component's prior
  energy `||z~ - mu_k||^2 / (2 sigma_k^2)` written in z coordinates (Langevin in z is Langevin in z~
  preconditioned by sigma_k^2). A caller who prefers to move z~ directly passes `prior_energy` for the
  component (or the full mixture log-density) to `ddls_refine`;
- DRS draws its candidates through `latent_fn(seeds, device)` (default: `seeded_normal`), so a mixture prior
  can choose the component from the candidate's seed as well.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import torch
from torch import Tensor

from ganlab.schema import Strict

# Seeds must fit in a non-negative int64 so they can live in a LongTensor.
MAX_SEED = 2**63 - 1

# SplitMix64 constants (Vigna, splitmix64.c), as signed int64 (two's complement) for torch arithmetic.
_GOLDEN = 0x9E3779B97F4A7C15 - 2**64
_MUL1 = 0xBF58476D1CE4E5B9 - 2**64
_MUL2 = 0x94D049BB133111EB - 2**64


def as_seed_tensor(seeds: Sequence[int] | Tensor) -> Tensor:
    """Seeds as a 1-D int64 CPU tensor; raises ValueError unless every seed is in [0, 2**63 - 1]."""
    if isinstance(seeds, Tensor):
        if seeds.dtype.is_floating_point or seeds.dtype == torch.bool:
            raise ValueError(f"seeds: expected an integer tensor, got dtype {seeds.dtype}")
        out = seeds.detach().to("cpu", torch.int64).reshape(-1)
    else:
        out = torch.tensor([int(s) for s in seeds], dtype=torch.int64)
    if out.numel() and int(out.min()) < 0:
        raise ValueError(f"seeds: must be non-negative integers, got min {int(out.min())}")
    return out


class NoneConfig(Strict):
    """Options of the baseline G(seeded_normal(seed)) (postprocess method `none`): there are none."""


def seeded_normal(seeds: Sequence[int] | Tensor, shape: tuple[int, ...], device: torch.device | str) -> Tensor:
    """Standard-normal latents, one row per seed: (len(seeds), *shape) float32 on `device`.

    Row i equals `torch.randn(shape, generator=torch.Generator().manual_seed(seeds[i]))`, whatever the other
    seeds are, so the same seed gives the same latent at any batch size.
    """
    seed_list = as_seed_tensor(seeds).tolist()
    rows = []
    for s in seed_list:
        gen = torch.Generator(device="cpu")
        gen.manual_seed(s)
        rows.append(torch.randn(shape, generator=gen))
    if not rows:
        return torch.empty((0, *shape), device=device)
    return torch.stack(rows).to(device)  # (B, *shape)


def purpose_key(purpose: str) -> int:
    """Stable 64-bit key of a purpose string (first 8 bytes of BLAKE2b), as a signed int64."""
    return _wrap(int.from_bytes(hashlib.blake2b(purpose.encode("utf-8"), digest_size=8).digest(), "little"))


def _wrap(v: int) -> int:
    """A Python int reduced to a signed 64-bit word (two's complement), as torch int64 arithmetic would."""
    v &= 2**64 - 1
    return v - 2**64 if v >= 2**63 else v


def _shr(x: Tensor, k: int) -> Tensor:
    """Logical right shift of int64 words (torch's >> is arithmetic on signed ints)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def _mix(x: Tensor) -> Tensor:
    """SplitMix64 output function (finaliser) on int64 words, wrapping arithmetic."""
    x = (x ^ _shr(x, 30)) * _MUL1
    x = (x ^ _shr(x, 27)) * _MUL2
    return x ^ _shr(x, 31)


def _stream_words(seeds: Tensor, purpose: str, step: int, n_words: int, device: torch.device | str) -> Tensor:
    """(B, n_words) int64: words 0..n_words-1 of the SplitMix64 stream keyed by (seed, purpose, step)."""
    if step < 0:
        raise ValueError(f"step: must be >= 0, got {step}")
    s = seeds.to(device)
    key = _mix(s ^ purpose_key(purpose))
    key = _mix(key + _wrap(_GOLDEN * (step + 1)))  # (B,)
    # word c = mix(key + (c+1) * golden): the c-th SplitMix64 output from state `key`.
    counters = torch.arange(1, n_words + 1, dtype=torch.int64, device=device) * _GOLDEN  # (n_words,)
    return _mix(key[:, None] + counters[None, :])


def derived_uniform(
    seeds: Sequence[int] | Tensor,
    purpose: str,
    step: int,
    shape: tuple[int, ...],
    device: torch.device | str,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Uniforms in the open interval (0, 1), (len(seeds), *shape), from the stream (seed, purpose, step).

    Each value is `(top 53 bits + 0.5) / 2**53`, so 0 and 1 never occur. Row i depends only on
    (seeds[i], purpose, step): batch-invariant by construction.
    """
    seed_t = as_seed_tensor(seeds)
    n = math.prod(shape)
    words = _stream_words(seed_t, purpose, step, n, device)
    u = (_shr(words, 11).to(torch.float64) + 0.5) * 2.0**-53
    return u.reshape(len(seed_t), *shape).to(dtype)


def derived_normal(
    seeds: Sequence[int] | Tensor,
    purpose: str,
    step: int,
    shape: tuple[int, ...],
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Standard normals, (len(seeds), *shape), from the stream (seed, purpose, step) via Box-Muller.

    Element j uses words 2j and 2j+1 of the stream; computed in float64, then cast to `dtype`.
    """
    seed_t = as_seed_tensor(seeds)
    n = math.prod(shape)
    words = _stream_words(seed_t, purpose, step, 2 * n, device)
    u = (_shr(words, 11).to(torch.float64) + 0.5) * 2.0**-53  # (B, 2n) in (0, 1)
    u1, u2 = u[:, 0::2], u[:, 1::2]
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    return z.reshape(len(seed_t), *shape).to(dtype)


def default_prior_energy(z: Tensor) -> Tensor:
    """Energy of the standard-normal prior, -log N(z; 0, I) + const = ||z||^2 / 2 per sample: (B, ...) -> (B,)."""
    return 0.5 * z.flatten(1).pow(2).sum(dim=1)


def batch_invariant_sigmoid(x: Tensor) -> Tensor:
    """sigmoid(x) = 1 / (2 + expm1(-x)), elementwise, within 1 ulp of `torch.sigmoid`.

    Why: on the CPU `torch.sigmoid` takes a vectorised path for long tensors and a scalar path for short ones,
    and the two differ in the last bit (measured: torch 2.14, float32 and float64), which would make DGflow's
    velocity and DRS's acceptance depend on the batch size. `torch.expm1` gives identical bits on both paths.
    """
    return 1.0 / (2.0 + torch.expm1(-x))
