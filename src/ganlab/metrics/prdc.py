"""Precision, recall, density and coverage (Naeem et al., ICML 2020), chunked and exact.

Definitions (`prdc` package, clovaai/generative-evaluation-prdc, `prdc/prdc.py`), real X_1..X_N, fake
Y_1..Y_M, NND_k(Z_i) = distance from Z_i to its k-th nearest *other* sample of its own set, i.e. the
(k+1)-th smallest distance including Z_i itself, strict `<`, Euclidean:

    precision = 1/M  sum_j 1[exists i: |Y_j - X_i| < NND_k(X_i)]
    recall    = 1/N  sum_i 1[exists j: |X_i - Y_j| < NND_k(Y_j)]
    density   = 1/(kM) sum_j sum_i 1[|Y_j - X_i| < NND_k(X_i)]
    coverage  = 1/N  sum_i 1[min_j |X_i - Y_j| < NND_k(X_i)]    (= exists j: ... , the same relation)

`prdc` materialises the N x N, M x M and N x M distance matrices (plus an N x N int64 argpartition).
Here every pair is screened once, in (chunk_size x chunk_size) tiles of one low-precision GEMM, and only
the pairs that the screen's rigorous error bound leaves undecided are computed again, in two finer tiers:

1. Screen (every pair). Both sets are centred on the real mean and rounded to the screening dtype,
   x^_i: bfloat16 on CPUs with native bf16 dot products (AVX512-BF16 or AMX; ~4x the float32 GEMM rate
   here), else float32, or float64 when float32 matmuls are not IEEE (TF32/bf16 matmul precision).
   Rows [x^_i, h_i, l_i, 1, 1] against columns [x^_j, 1, 1, h_j, l_j], h + l ~ K/4 - |x^|^2/2 (a hi/lo
   pair in the screening dtype) for a typical squared radius K, make one GEMM return
       o_ij = x^_i.x^_j + (h_i + l_i) + (h_j + l_j) = (c_i + c_j - |x^_i - x^_j|^2) / 2,
   c_i = |x^_i|^2 + 2 (h_i + l_i) known in float64: o is small near the radii, so a bf16 output rounds
   little. With float32 accumulation (oneDNN's default "strict" accumulation mode for bf16 inputs;
   Higham, "Accuracy and Stability of Numerical Algorithms", Sec. 3.1: gamma_n = n u / (1 - n u))
       | |x^_i - x^_j|^2 - (c_i + c_j - 2 o_ij) | <= 2 (gamma_{D+4} (|x^_i||x^_j| + |h_i| + |l_i| + |h_j|
                                                   + |l_j|) + u_out |o_ij|)   (+ float64 and underflow terms)
   with u_out = 2^-7 / (1 - 2^-7) for a bf16 output (round-to-nearest would need only 2^-8). The input
   rounding delta_i = (X_i - mean) - x^_i is measured per row (|delta_i| <= rho_i, x^_i.delta_i = pi_i),
   which turns that into an interval [lo, hi] for the true squared distance (see _intervals). Per-row
   and per-column thresholds on o (one compare per tile) keep every pair whose interval can matter.
2. Float32 recomputation (after a bf16 screen, float32 inputs only): sum_d (x_d - y_d)^2 in float32
   from the original features, within gamma_{D+2} of the true value relative to itself.
3. Exact: sum_d (x_d - y_d)^2 in float64 from the original values.
The k-NN radius of a row is its (k+1)-th smallest d2: the row's diagonal tile bounds it from above
before its other tiles are screened, and each tier keeps only the pairs whose interval overlaps
[(k+1)-th smallest lo, (k+1)-th smallest hi] of the row, counting those provably below, so the exact
tier sees ~1-2 pairs per row. A cross pair is decided by its interval against the two radii.

Distance values are then rounded the way `prdc` (sklearn `pairwise_distances`) stores them: float32 when
both sides of a comparison are float32 arrays (sklearn computes in float64 and stores float32, then
takes the float32 sqrt), float64 otherwise, with numpy's correctly rounded sqrt; comparisons use those
values. So the result equals `prdc.compute_prdc` exactly, except where prdc's own GEMM round-off
(~1e-16 |x|^2 relative) flips a comparison: exact duplicates inside a set whose k-NN radius is then 0
(exactly 0 here, ~1e-8 in prdc), or features whose spread is ~1e-8 of their norm. Ties that survive
that rounding follow prdc's strict `<`.

If a screen's bound is too loose for the data (too many candidates per row, e.g. tight clusters far
from the mean) or the float32 accumulation could overflow, the computation restarts with the next wider
screen; results never depend on the screen, only the time does.

Threads: tiles and slabs of rows or pairs are independent tasks, run by torch.get_num_threads() Python
threads (each with its own buffers) while torch itself runs single-threaded; see _run for why.

Memory: O((N + M) D) for the features and their screening copies (2 bytes per value for bf16),
O(chunk_size^2) per thread for a tile and O(N + M) candidates per set; never an N x M matrix.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import torch

__all__ = ["compute_prdc"]

# Relative margin on the squared radius under which a comparison is decided before rounding the
# distance values to float32/float64 (float32 rounding moves a value by < 2^-23 relative).
_DELTA = 2.0**-20
# (rows or pairs) x D elements per slab of the row loops (float64: 4 MB per buffer, 3 per thread).
_SLAB_ELEMS = 1 << 19
# Screened pairs processed per batch: bounds the float64 temporaries of the interval arithmetic.
_BATCH_PAIRS = 1 << 15
# Elements of the per-pair threshold rows materialised at once by a two-sided screen (2 MB).
_THR_ELEMS = 1 << 19
# Multiply-adds per tile below which tiles run on one thread (a 512 x 512 tile at D = 60).
_MIN_PARALLEL_MACS = 1 << 24
# Rows of the first block used to estimate the typical squared radius K before a k-NN pass.
_PILOT_ROWS = 256
# Candidates per row left after the bf16 screen above which the float32 screen is cheaper: a float32
# recomputation costs ~D float32 loads per pair, a float32 k-NN pass ~N D / 4 extra GEMM flops per row.
_MAX_KEPT_PER_ROW = 64
# Relative slack for float64 rounding in the bound arithmetic itself (a few ulps, taken generously).
_F64_SLACK = 2.0**-45


class _Ineffective(Exception):
    """The screening dtype cannot represent these features usefully; retry with the next one."""


def compute_prdc(real_features, fake_features, nearest_k: int = 5, chunk_size: int = 2048, device="cpu") -> dict[str, float]:
    """Precision, recall, density and coverage of fake features against real features.

    Args:
        real_features: (N, D) numpy array or torch tensor, finite. N > nearest_k.
        fake_features: (M, D), same D, finite. M > nearest_k.
        nearest_k: k of the k-NN radii, >= 1 (paper and `prdc` default 5).
        chunk_size: edge of the square screening tiles (per thread ~ 7 chunk_size^2 + 2 chunk_size D
            bytes with the bf16 screen), >= 1; tiles are at least nearest_k + 1 rows.
        device: torch device to compute on ("cpu", "cuda", ...); results do not depend on it.
    Returns:
        {"precision", "recall", "coverage"} in [0, 1] and "density" in [0, N/k], as Python floats;
        equal to `prdc.compute_prdc(real, fake, nearest_k)` (see the module docstring for the one
        degenerate exception). Deterministic; nothing random; independent of the thread count.
    On CPU the work runs on torch.get_num_threads() threads of its own; torch's intra-op thread count
    is 1 during the call (process-wide) and restored afterwards.
    """
    if not isinstance(nearest_k, int) or nearest_k < 1:
        raise ValueError(f"nearest_k must be an integer >= 1, got {nearest_k!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    device = torch.device(device)
    real = _as_feature_tensor(real_features, "real_features", device)
    fake = _as_feature_tensor(fake_features, "fake_features", device)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real_features has D={real.shape[1]} but fake_features has D={fake.shape[1]}")
    for name, x in (("real_features", real), ("fake_features", fake)):
        if x.shape[0] <= nearest_k:
            raise ValueError(f"{name} has {x.shape[0]} samples; nearest_k={nearest_k} needs more than {nearest_k}")

    n, m = real.shape[0], fake.shape[0]
    dtypes = _screen_dtypes(device)
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    for attempt, dtype in enumerate(dtypes):
        may_give_up = attempt + 1 < len(dtypes)
        try:
            with _serial():  # parallel over tiles and slabs instead, see _run
                counts, covered, recalled = _prdc_counts(real, fake, nearest_k, chunk_size, dtype, threads, may_give_up)
            break
        except _Ineffective:
            continue
    return dict(
        precision=float((counts > 0).sum().item() / m),
        recall=float(recalled.sum().item() / n),
        density=float(counts.sum().item() / (nearest_k * m)),
        coverage=float(covered.sum().item() / n),
    )


def _as_feature_tensor(x, name: str, device: torch.device) -> torch.Tensor:
    """(N, D) float32 stays float32 (prdc stores float32 distances for it); anything else -> float64."""
    t = x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, D) with N, D >= 1, got {tuple(t.shape)}")
    t = t.to(device=device, dtype=torch.float32 if t.dtype == torch.float32 else torch.float64).contiguous()
    step = max(1, _SLAB_ELEMS // t.shape[1])
    if not all(torch.isfinite(t[s : s + step]).all() for s in range(0, t.shape[0], step)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return t


def _screen_dtypes(device: torch.device) -> list[torch.dtype]:
    """Screening GEMM dtypes to try, fastest first; the last one (float64) always works."""
    dtypes = []
    if device.type == "cpu" and _cpu_has_bf16_gemm():
        dtypes.append(torch.bfloat16)
    if _float32_matmul_is_ieee(device):
        dtypes.append(torch.float32)
    dtypes.append(torch.float64)
    return dtypes


def _cpu_has_bf16_gemm() -> bool:
    """True when torch's CPU bf16 GEMM runs on native bf16 dot-product instructions through oneDNN.

    Without them oneDNN converts to float32 and the bf16 screen only adds a looser bound.
    """
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return native and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled


def _float32_matmul_is_ieee(device: torch.device) -> bool:
    """True when float32 GEMMs are plain IEEE float32 (no TF32 / bf16 internal precision)."""
    if torch.get_float32_matmul_precision() != "highest":
        return False
    if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        return False
    return True


def _prdc_counts(real, fake, k: int, chunk: int, dtype: torch.dtype, threads: int, may_give_up: bool):
    """(counts (M,) int64, covered (N,) bool, recalled (N,) bool), see _cross_relations; screens in dtype
    on `threads` worker threads.

    Raises _Ineffective (only if may_give_up) when dtype's bound leaves too many candidates.
    """
    # sklearn's output dtype: float32 iff both operands are float32 (check_pairwise_arrays).
    f32 = torch.float32
    real_out = f32 if real.dtype == f32 else torch.float64
    fake_out = f32 if fake.dtype == f32 else torch.float64
    cross_out = f32 if (real.dtype == f32 and fake.dtype == f32) else torch.float64

    d = real.shape[1]
    # A diagonal tile bounds its rows' radii only if it holds k + 1 rows; smaller tiles would leave
    # every pair of every row a candidate.
    chunk = max(chunk, k + 1)
    tile = min(chunk, max(real.shape[0], fake.shape[0]))
    ws = _Workspace(tile, d, dtype, threads, real.device)
    bound = _Bound(dtype, d)
    # Centring removes the common offset (e.g. non-negative CNN features) from |x|^2, which sets the bound.
    center = _mean64(real, ws)
    real_e = _Embedding(real, center, bound, ws, may_give_up)
    fake_e = _Embedding(fake, center, bound, ws, may_give_up)
    max_kept = _MAX_KEPT_PER_ROW if may_give_up else None
    real_sq_radius, fake_sq_radius = _knn_sq_radii([(real, real_e), (fake, fake_e)], k, chunk, bound, ws, max_kept)
    return _cross_relations(
        real, fake, real_e, fake_e, real_sq_radius, fake_sq_radius, chunk, (real_out, fake_out, cross_out), bound, ws
    )


@contextlib.contextmanager
def _serial():
    """torch's CPU ops single-threaded on every thread (restored afterwards); see _run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _run(ws: "_Workspace", tasks, fn, workers=None) -> None:
    """Calls fn(worker, *task) for every task, on as many Python threads as there are workers (default
    all of ws's), each call on the buffers of a worker that is free at that moment (dynamic scheduling).

    The callers run under _serial: parallelism comes from independent tasks (tiles, slabs), not from
    splitting each torch op. With OpenMP every parallel op is a fork-join, and while another process
    holds a core every join waits for a time slice: measured on this 2-core machine with one core
    busy, a 2048^2 bf16 GEMM tile plus its screen took 68 ms with 2 OpenMP threads and 28 ms as one of
    2 single-threaded tasks (21 vs 23 ms when idle). torch releases the GIL inside each op.
    """
    tasks = list(tasks)
    workers = ws.workers if workers is None else workers
    free = queue.SimpleQueue()
    for w in workers:
        free.put(w)

    def call(task) -> None:
        w = free.get()
        try:
            fn(w, *task)
        finally:
            free.put(w)

    if len(workers) == 1 or len(tasks) <= 1:
        for task in tasks:
            call(task)
    else:
        with ThreadPoolExecutor(len(workers)) as pool:
            list(pool.map(call, tasks))


def _slabs(ws: "_Workspace", total: int):
    """Tasks (s, p) covering range(total) in slabs of at most ws.step."""
    return [(s, min(ws.step, total - s)) for s in range(0, total, ws.step)]


def _mean64(x: torch.Tensor, ws: "_Workspace") -> torch.Tensor:
    """(D,) float64 column mean of x, summed slab by slab (x.mean(0, dtype=float64) and x.sum(0,
    dtype=float64) first copy all of x to float64)."""
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    w = ws.workers[0]
    for s, p in _slabs(ws, x.shape[0]):
        total += w.f64[0][:p].copy_(x[s : s + p]).sum(0)
    return total / x.shape[0]


def _prdc_value(sq_dist: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
    """Exact squared distances (float64) -> the distance values prdc compares, as float64 numbers.

    sklearn stores float64 d^2 rounded to float32 and takes a float32 sqrt for float32 inputs, and a
    float64 sqrt otherwise, both numpy's correctly rounded IEEE sqrt. torch's vectorised CPU sqrt is not
    correctly rounded (1 ulp off for ~17% of float32 and ~1% of float64 values, torch 2.x), which flips
    exact ties, so the few values needed here go through numpy.
    """
    v = sq_dist.detach().cpu().numpy().astype(np.float32 if out_dtype == torch.float32 else np.float64)
    return torch.from_numpy(np.sqrt(np.maximum(v, 0)).astype(np.float64)).to(sq_dist.device)


class _Worker:
    """One thread's buffers: a tile's GEMM output o, its float32 copy (bf16 screens), its mask, a few
    rows of per-pair thresholds, a column-form block; and slabs for the row loops, three float64 and
    two float32 (step, D), which share memory with the tile buffers (a worker never runs a tile and a
    slab at once).
    """

    def __init__(self, tile: int, d: int, step: int, dtype: torch.dtype, device: torch.device):
        self.out = torch.empty((tile, tile), dtype=dtype, device=device)
        self.cols = torch.empty((tile, d + 4), dtype=dtype, device=device)
        self.cols_key = None  # which block cols holds, see _Embedding.columns
        tile_bytes = 4 * tile * tile if dtype == torch.bfloat16 else 0
        slab_bytes = (3 * 8 + 2 * 4) * step * d
        front = -(-max(tile_bytes, slab_bytes) // 64) * 64  # the mask starts 8-byte aligned (_nonzero_flat)
        arena = torch.empty(front + tile * tile, dtype=torch.uint8, device=device)
        # bf16 outputs are compared as float32 (exact copy): torch's bf16 compare kernels are ~2x slower.
        self.cmp = arena[:tile_bytes].view(torch.float32).view(tile, tile) if tile_bytes else None
        self.mask = arena[front:].view(torch.bool).view(tile, tile)
        cmp_dtype = torch.float32 if dtype == torch.bfloat16 else dtype
        self.thr = torch.empty((max(1, _THR_ELEMS // tile), tile), dtype=cmp_dtype, device=device)
        n = step * d
        self.f64 = [arena[8 * n * t : 8 * n * (t + 1)].view(torch.float64).view(step, d) for t in range(3)]
        self.f32 = [arena[4 * n * t : 4 * n * (t + 1)].view(torch.float32).view(step, d) for t in range(6, 8)]

    @staticmethod
    def view(buf: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        """A (rows, cols) contiguous view on the front of a 2-D buffer."""
        return buf.view(-1)[: rows * cols].view(rows, cols)


class _Workspace:
    """Reused buffers, one _Worker per thread (torch's thread count on CPU, one thread otherwise).
    Fresh multi-MB allocations per tile cost more than the arithmetic on this class of machine (page
    faults on every new mapping), so tiles, masks and slabs live here.
    """

    def __init__(self, tile: int, d: int, dtype: torch.dtype, threads: int, device: torch.device):
        self.step = max(1, _SLAB_ELEMS // d)  # rows or pairs per slab
        # Tiny tiles: the Python work per task (and the GIL it holds) outweighs the arithmetic.
        if tile * tile * (d + 4) < _MIN_PARALLEL_MACS:
            threads = 1
        self.workers = [_Worker(tile, d, self.step, dtype, device) for _ in range(threads)]


class _Bound:
    """Error constants of the screening GEMM in `dtype` with inner dimension D + 4.

    gamma: gamma_{D+4} of the float32 (float64) accumulation; u_out: relative rounding of the output
    against the rounded value (bf16 outputs: 2^-7 / (1 - 2^-7), which holds for round-to-nearest and
    for truncation; 0 when the accumulator is the output);
    tiny: smallest normal number of the accumulation, for flushed subnormals (DAZ/FTZ may be on).
    """

    def __init__(self, dtype: torch.dtype, d: int):
        self.dtype = dtype
        unit = 2.0**-53 if dtype == torch.float64 else 2.0**-24
        self.gamma = (d + 4) * unit / (1 - (d + 4) * unit) * (1 + _F64_SLACK)
        self.u_out = 2.0**-7 / (1 - 2.0**-7) * (1 + _F64_SLACK) if dtype == torch.bfloat16 else 0.0
        self.tiny = 2.0**-1022 if dtype == torch.float64 else 2.0**-126
        self.abs_err = 2 * (d + 6) * self.tiny  # flushed partial sums and output


class _Extremes(NamedTuple):
    """Extremes of a block of rows that bound the column terms of a tile (see _Embedding)."""

    cmin: float
    cmax: float
    cabs: float  # max |c|
    nmax: float  # max |x^|
    amax: float
    rmax: float  # max rho
    pmin: float  # min pi
    pmax: float
    pabs: float
    emax: float  # max pi_err


class _Embedding:
    """One feature set centred and rounded to the screening dtype, in the augmented row form.

    Attributes (n rows, D features; x^_i = x_i - center rounded; delta_i = (x_i - center) - x^_i in exact
    arithmetic; a DAZ mode may zero subnormal GEMM inputs, f_i with |f_i| <= sqrt(D) tiny, which every
    bound below allows for):
        u: (n, D + 4) screening dtype, rows [x^_i, h_i, l_i, 1, 1].
        sq, norm: (n,) float64, |x^_i|^2 and |x^_i|.
        rho: (n,) float64, rho_i >= |delta_i| (+ |f_i|).
        pi, pi_err: (n,) float64, |x^_i . delta_i - pi_i| <= pi_err_i (also with x^ - f, delta + f).
        c, a: (n,) float64 set by set_shift(K): c_i = |x^_i|^2 + 2 (h_i + l_i), and a_i >= the row's
            additive share of E (gamma (|h_i| + |l_i|) plus the error of c_i, float64 and DAZ).
    """

    def __init__(self, x: torch.Tensor, center: torch.Tensor, bound: _Bound, ws: _Workspace, may_give_up: bool):
        n, d = x.shape
        self.bound = bound
        self.d = d
        self.u = torch.empty((n, d + 4), dtype=bound.dtype, device=x.device)
        self.u[:, d + 2 :] = 1
        self.sq = torch.empty(n, dtype=torch.float64, device=x.device)
        self.pi = torch.empty(n, dtype=torch.float64, device=x.device)
        dsq = torch.empty(n, dtype=torch.float64, device=x.device)

        def rows(w: _Worker, s: int, p: int) -> None:  # float64 temporaries one slab at a time
            xc, xh, dl = (b[:p] for b in w.f64)
            xc.copy_(x[s : s + p]).sub_(center)
            xr = self.u[s : s + p, :d]
            xr.copy_(xc)
            xh.copy_(xr)  # x^ in float64, exact
            # x_c - x^: exact (x^ is a rounding of x_c within a factor 2, Sterbenz), or x_c where it
            # underflowed to 0.
            torch.sub(xc, xh, out=dl)
            prod = xc  # x_c is no longer needed
            torch.sum(torch.mul(xh, xh, out=prod), 1, out=self.sq[s : s + p])
            torch.sum(torch.mul(dl, dl, out=prod), 1, out=dsq[s : s + p])
            torch.sum(torch.mul(xh, dl, out=prod), 1, out=self.pi[s : s + p])

        _run(ws, _slabs(ws, n), rows)
        self.norm = self.sq.sqrt()
        dn = dsq.sqrt()
        # x_c = fl(x - center) is itself off by <= 2^-53 |x - center| per element; float64 sums of D
        # products are within (D + 2) 2^-53 of their absolute values.
        xerr = 2.0**-52 * (self.norm + dn)
        daz = d**0.5 * bound.tiny
        self.rho = (dn * (1 + (d + 2) * 2.0**-52) + xerr + daz) * (1 + _F64_SLACK)
        self.pi_err = self.norm * (xerr + (d + 2) * 2.0**-52 * dn) + daz * (self.norm + self.rho + daz)
        self.pi_err *= 1 + _F64_SLACK
        self._c_err = ((d + 2) * 2.0**-52 * self.sq + 2 * daz * self.norm + daz * daz) * (1 + _F64_SLACK)
        # The float32 accumulation must not overflow; otherwise the next (wider) dtype is used.
        limit = 2.0**100 if bound.dtype != torch.float64 else float("inf")
        if may_give_up and not (torch.isfinite(self.rho).all() and float(self.sq.max()) < limit):
            raise _Ineffective
        self.c = self.a = None
        self.shifts = 0

    def set_shift(self, k_sq: float) -> None:
        """Sets h + l ~ k_sq/4 - |x^|^2/2 (hi/lo split in the screening dtype), and c, a accordingly."""
        d, dtype = self.d, self.bound.dtype
        alpha = k_sq / 4 - self.sq / 2
        hi = alpha.to(dtype)
        lo = (alpha - hi.double()).to(dtype)
        self.u[:, d] = hi
        self.u[:, d + 1] = lo
        self.shifts += 1  # invalidates column blocks built before
        hl = hi.double() + lo.double()  # exact: lo is a rounding of alpha - hi
        self.c = self.sq + 2 * hl
        self.a = (self.bound.gamma * (hi.double().abs() + lo.double().abs()) + self._c_err) * (1 + _F64_SLACK)
        # (6, n): one index_select gathers what _intervals needs per pair.
        self.packed = torch.stack([self.c, self.norm, self.a, self.rho, self.pi, self.pi_err])

    def columns(self, b0: int, b1: int, w: _Worker) -> torch.Tensor:
        """Rows b0:b1 in the column form [x^_j, 1, 1, h_j, l_j], (b1 - b0, D + 4) in w's buffer (kept
        from w's previous task when that used the same block: tasks come column block by block)."""
        d = self.d
        v = w.view(w.cols, b1 - b0, d + 4)
        key = (id(self), self.shifts, b0, b1)
        if w.cols_key != key:
            v[:, :d].copy_(self.u[b0:b1, :d])
            v[:, d : d + 2] = 1
            v[:, d + 2 :].copy_(self.u[b0:b1, d : d + 2])
            w.cols_key = key
        return v

    def extremes(self, b0: int, b1: int) -> _Extremes:
        c, p = self.c[b0:b1], self.pi[b0:b1]
        cmin, cmax, pmin, pmax = float(c.min()), float(c.max()), float(p.min()), float(p.max())
        return _Extremes(
            cmin, cmax, max(-cmin, cmax), float(self.norm[b0:b1].max()), float(self.a[b0:b1].max()),
            float(self.rho[b0:b1].max()), pmin, pmax, max(-pmin, pmax), float(self.pi_err[b0:b1].max()),
        )


def _screen(rows: _Embedding, a0: int, a1: int, cols: torch.Tensor, w: _Worker) -> torch.Tensor:
    """o for rows a0:a1 against a column-form block, as a tensor to compare (float32 copy of a bf16 o)."""
    o = w.view(w.out, a1 - a0, cols.shape[0])
    torch.mm(rows.u[a0:a1], cols.T, out=o)
    if w.cmp is None:
        return o
    return w.view(w.cmp, a1 - a0, cols.shape[0]).copy_(o)


def _intervals(ea: _Embedding, eb: _Embedding, i, j, o) -> tuple[torch.Tensor, torch.Tensor]:
    """[lo, hi] (float64, (P,) each) containing the true squared distance of each pair from its GEMM output.

    i: rows of ea, j: rows of eb (both (P,) int32 or int64), o: (P,) float64 values of o_ij. With
    g = |x^_i - x^_j|^2 in [g_lo, g_hi] from o (module docstring), d2 = |x^_i - x^_j + delta_i - delta_j|^2
    is bounded two ways, and the tighter side of each is kept:
      - |d - sqrt(g)| <= rho_i + rho_j (triangle inequality; tight for close pairs);
      - d2 = g + 2 (pi_i + pi_j) - 2 (x^_i . delta_j + x^_j . delta_i) + |delta_i - delta_j|^2 with the middle
        terms bounded by Cauchy-Schwarz (tighter when |x^| < d, as for most pairs of centred features).
    """
    b = ea.bound
    ci, ni, ai, rhoi, pii, pei = ea.packed.index_select(1, i)
    cj, nj, aj, rhoj, pij, pej = eb.packed.index_select(1, j)
    ao = o.abs()
    e = b.gamma * ni * nj + ai + aj + b.u_out * ao + b.abs_err
    base = ci + cj - 2 * o
    slack = 2 * e + _F64_SLACK * (ci.abs() + cj.abs() + 2 * ao)
    g_lo, g_hi = (base - slack).clamp_(min=0), (base + slack).clamp_(min=0)
    r = rhoi + rhoj
    lin = 2 * (pii + pij)
    width = 2 * (ni * rhoj + nj * rhoi + pei + pej)
    mag = lin.abs() + width
    lo = torch.maximum((g_lo.sqrt() - r).clamp_(min=0).square_(), g_lo + lin - width - _F64_SLACK * (g_lo + mag))
    hi = torch.minimum((g_hi.sqrt() + r).square_(), g_hi + lin + width + r * r + _F64_SLACK * (g_hi + mag + r * r))
    return lo.mul_(1 - _F64_SLACK), hi.mul_(1 + _F64_SLACK)


def _thresholds(ea: _Embedding, a0: int, a1: int, t: torch.Tensor, cols: _Extremes, dtype: torch.dtype) -> torch.Tensor:
    """tau (a1 - a0,) in dtype: every pair of row i (rows a0:a1 of ea) with a column of the block that
    `cols` describes and lo <= t_i (t: float64, may be inf) has o >= tau_i.

    lo <= t bounds g_lo by q (both forms of _intervals, column terms at their extremes), and
    g_lo >= R + q - 2 o - 2 v |o|; 2 o + 2 v |o| is increasing, so o >= its inverse at R.
    """
    b = ea.bound
    ci, ni, ai, rhoi, pii = ea.c[a0:a1], ea.norm[a0:a1], ea.a[a0:a1], ea.rho[a0:a1], ea.pi[a0:a1]
    t = t * (1 + 4 * _F64_SLACK)
    q_tri = (t.sqrt() + rhoi + cols.rmax).square()
    q_lin = t - 2 * (pii + cols.pmin) + 2 * (ni * cols.rmax + cols.nmax * rhoi + ea.pi_err[a0:a1] + cols.emax)
    q = torch.minimum(q_tri, q_lin + 4 * _F64_SLACK * (q_lin.abs() + t + 2 * (pii.abs() + cols.pabs)))
    q = q + 4 * _F64_SLACK * q.abs()
    e0 = b.gamma * ni * cols.nmax + ai + cols.amax + b.abs_err
    mag = ci.abs() + cols.cabs
    r = ci + cols.cmin - 2 * e0 - _F64_SLACK * mag - q
    v = b.u_out + _F64_SLACK
    tau = torch.where(r >= 0, r / (2 * (1 + v)), r / (2 * (1 - v)))
    tau = tau - _F64_SLACK * (mag + q.abs() + 2 * e0)  # rounding of the lines above
    return _round_down(tau, dtype)


def _upper_bounds(ea: _Embedding, a0: int, a1: int, ok: torch.Tensor, cols: _Extremes) -> torch.Tensor:
    """(a1 - a0,) float64 H_i >= hi of every pair of row i with a column of the block and o >= ok_i.

    g_hi grows as o falls (the -2 o term dominates u_out |o|), so the column terms at their extremes and
    o = ok bound it, and with it both forms of hi.
    """
    b = ea.bound
    ci, ni, ai, rhoi, pii = ea.c[a0:a1], ea.norm[a0:a1], ea.a[a0:a1], ea.rho[a0:a1], ea.pi[a0:a1]
    e = b.gamma * ni * cols.nmax + ai + cols.amax + b.u_out * ok.abs() + b.abs_err
    mag = ci.abs() + cols.cabs + 2 * ok.abs() + 2 * e
    g = (ci + cols.cmax - 2 * ok + 2 * e + 2 * _F64_SLACK * mag).clamp(min=0)
    r = rhoi + cols.rmax
    lin = 2 * (pii + cols.pmax) + 2 * (ni * cols.rmax + cols.nmax * rhoi + ea.pi_err[a0:a1] + cols.emax)
    h = torch.minimum((g.sqrt() + r).square(), g + lin + r * r + 4 * _F64_SLACK * (g + lin.abs() + r * r))
    return h * (1 + 4 * _F64_SLACK)


def _round_down(v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float64 -> dtype, rounded towards -inf, so `s >= _round_down(t)` keeps every s >= t."""
    r = v.to(dtype)
    return torch.where(r.double() > v, torch.nextafter(r, torch.full_like(r, float("-inf"))), r)


def _round_up(v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float64 -> dtype, rounded towards +inf, so `s <= _round_up(t)` keeps every s <= t."""
    r = v.to(dtype)
    return torch.where(r.double() < v, torch.nextafter(r, torch.full_like(r, float("inf"))), r)


class _Screened:
    """Collects the pairs that pass the screen, tile by tile, and hands them to consume(i, j, o) in
    batches of about _BATCH_PAIRS: global int32 row and column indices and float64 o, decoded with a
    few large tensor ops rather than several small ones per tile."""

    def __init__(self, consume):
        self.consume = consume
        self.flat, self.vals, self.tiles, self.pending = [], [], [], 0  # per tile: (count, q, r0, c0)

    def add(self, s: torch.Tensor, r0: int, c0: int, tau_rows: torch.Tensor, tau_cols, w: _Worker) -> None:
        """Entries of tile s (rows r0.., cols c0..) with s >= tau_rows[i] or (if given) s >= tau_cols[j]."""
        m = w.view(w.mask, *s.shape)
        if tau_cols is None:
            torch.ge(s, tau_rows[:, None], out=m)
        else:  # s >= min(tau_i, tau_j) is the union: one compare, thresholds a few rows at a time
            step = w.thr.shape[0]
            for r in range(0, s.shape[0], step):
                t = w.view(w.thr, min(step, s.shape[0] - r), s.shape[1])
                torch.minimum(tau_rows[r : r + step, None], tau_cols[None, :], out=t)
                torch.ge(s[r : r + step], t, out=m[r : r + step])
        flat = _nonzero_flat(m.view(-1))
        self.flat.append(flat)
        self.vals.append(s.view(-1)[flat])
        self.tiles.append((flat.numel(), s.shape[1], r0, c0))
        self.pending += flat.numel()
        if self.pending >= _BATCH_PAIRS:
            self.flush()

    def flush(self) -> None:
        if not self.tiles:
            return
        flat = torch.cat(self.flat)
        counts, q, r0, c0 = (torch.tensor(t, device=flat.device) for t in zip(*self.tiles))
        q, r0, c0 = (v.repeat_interleave(counts) for v in (q, r0, c0))
        o = torch.cat(self.vals).double()
        self.flat, self.vals, self.tiles, self.pending = [], [], [], 0
        self.consume((flat // q + r0).int(), (flat % q + c0).int(), o)


def _nonzero_flat(mask: torch.Tensor) -> torch.Tensor:
    """Ascending indices of the True entries of a contiguous 1-D bool tensor whose storage starts 8-byte
    aligned. Scans 8 bools at a time as int64 words first (~3x faster than nonzero on sparse masks).
    """
    n8 = mask.numel() // 8 * 8
    if n8 == 0:
        return mask.nonzero().squeeze(1)
    words = mask[:n8].view(torch.int64).nonzero().squeeze(1)
    r, c = mask[:n8].view(-1, 8)[words].nonzero(as_tuple=True)
    idx = words[r] * 8 + c
    if n8 < mask.numel():
        idx = torch.cat([idx, mask[n8:].nonzero().squeeze(1) + n8])
    return idx


# --- exact and float32 recomputation -------------------------------------------------------------


def _exact_sq_dists(x, y, i, j, ws: _Workspace, workers=None) -> torch.Tensor:
    """sum_d (x[i] - y[j])_d^2 in float64 for index pairs i, j (P,) -> (P,); difference form, no GEMM.
    On `workers` (default all, see _run)."""
    out = torch.empty(i.shape[0], dtype=torch.float64, device=x.device)

    def pairs(w: _Worker, s: int, p: int) -> None:
        bx, by = w.f64[0][:p], w.f64[1][:p]
        for src, idx, dst, tmp in ((x, i, bx, w.f32[0]), (y, j, by, w.f32[1])):
            if src.dtype == torch.float64:
                torch.index_select(src, 0, idx[s : s + p], out=dst)
            else:
                dst.copy_(torch.index_select(src, 0, idx[s : s + p], out=tmp[:p]))
        torch.sum(bx.sub_(by).square_(), 1, out=out[s : s + p])

    _run(ws, _slabs(ws, i.shape[0]), pairs, workers)
    return out


def _float32_intervals(x, y, i, j, ws: _Workspace, workers=None) -> tuple[torch.Tensor, torch.Tensor]:
    """[lo, hi] (float64, (P,)) around d2 of float32 rows x[i], y[j] from the float32 difference form
    (on `workers`, default all).

    Each term fl(fl(x_d - y_d)^2) is within gamma_3 of (x_d - y_d)^2 and the float32 sum of D non-negative
    terms within gamma_{D-1}, so |w - d2| <= gamma_{D+2} d2 (plus flushed subnormals); an overflowed w
    gives [0, inf].
    """
    d = x.shape[1]
    w = torch.empty(i.shape[0], dtype=torch.float32, device=x.device)

    def pairs(wk: _Worker, s: int, p: int) -> None:
        gx, gy = wk.f32[0][:p], wk.f32[1][:p]
        torch.index_select(x, 0, i[s : s + p], out=gx)
        torch.index_select(y, 0, j[s : s + p], out=gy)
        torch.sum(gx.sub_(gy).square_(), 1, out=w[s : s + p])

    _run(ws, _slabs(ws, i.shape[0]), pairs, workers)
    w = w.double()
    g = (d + 2) * 2.0**-24 / (1 - (d + 2) * 2.0**-24)
    tiny = 4 * (d + 2) * 2.0**-126
    finite = torch.isfinite(w)
    lo = torch.where(finite, ((w - tiny) / (1 + g)).clamp(min=0) * (1 - _F64_SLACK), 0.0)
    hi = torch.where(finite, (w + tiny) / (1 - g) * (1 + _F64_SLACK), float("inf"))
    return lo, hi


def _use_float32_tier(bound: _Bound, *inputs: torch.Tensor) -> bool:
    """The float32 recomputation pays off after a bf16 screen, and needs float32 inputs."""
    d = inputs[0].shape[1]
    return bound.dtype == torch.bfloat16 and all(t.dtype == torch.float32 for t in inputs) and (d + 2) * 2.0**-24 < 1e-2


# --- k-NN radii ----------------------------------------------------------------------------------


def _knn_sq_radii(sets, k: int, chunk: int, bound: _Bound, ws: _Workspace, max_kept) -> list[torch.Tensor]:
    """Exact squared distance from each row of x to its (k+1)-th nearest row of x, self included, for
    each (x, emb) in sets: x (N, D) original features, emb its screening embedding. The tiles of all
    sets are one batch of tasks (no idle worker between sets).

    max_kept: raise _Ineffective when more than max_kept candidates per row survive the screen (None:
    never). Returns [(N,) float64 per set] (prdc.compute_nearest_neighbour_distances, squared, unrounded).
    """
    passes = [_KnnPass(x, emb, k, chunk, ws) for x, emb in sets]
    # All diagonal tiles first: a worker then never waits long for the bound an off-diagonal tile needs.
    tasks = [(p, bi) for p in passes for bi in range(len(p.blocks))]
    tasks += [(p, ai, bi) for p in passes for bi in range(len(p.blocks)) for ai in range(bi)]
    _run(ws, tasks, lambda w, p, *blocks: p.tile(w, *blocks))
    radii = {}  # the sets' finer tiers side by side, each on one worker (their sorts are serial)
    _run(ws, [(p,) for p in passes], lambda w, p: radii.setdefault(id(p), p.finish(bound, ws, [w], max_kept)))
    return [radii[id(p)] for p in passes]


class _KnnPass:
    """The k-NN radii of one set: its tiles (upper triangle of the set against itself), then the tiers."""

    def __init__(self, x: torch.Tensor, emb: _Embedding, k: int, chunk: int, ws: _Workspace):
        n = x.shape[0]
        self.x, self.emb, self.k, self.n = x, emb, k, n
        emb.set_shift(_pilot_shift(emb, k, chunk, ws))
        self.h = torch.full((n,), float("inf"), dtype=torch.float64, device=x.device)  # radius upper bounds
        self.blocks = [(b0, min(b0 + chunk, n)) for b0 in range(0, n, chunk)]
        self.ext = [emb.extremes(b0, b1) for b0, b1 in self.blocks]
        self.bounded = [threading.Event() for _ in self.blocks]  # h of the block's rows is final
        self.parts = []  # (rows, cols, lo, hi): every pair with lo <= h[row], bounds rounded out to float32
        self.diag = {id(w): _Screened(self.keep_rows) for w in ws.workers}  # one collector per worker
        self.off = {id(w): _Screened(self.keep_both) for w in ws.workers}

    def keep_rows(self, i, j, o) -> None:  # diagonal tiles: both orders of a pair are in the tile
        lo, hi = _intervals(self.emb, self.emb, i, j, o)
        keep = lo <= self.h[i]
        self.parts.append((i[keep], j[keep], *_outward32(lo[keep], hi[keep])))

    def keep_both(self, i, j, o) -> None:  # tile (a, b), a < b: d2 is symmetric, feeds rows a and rows b
        lo, hi = _outward32(*_intervals(self.emb, self.emb, i, j, o))
        for r, c in ((i, j), (j, i)):
            keep = lo <= self.h[r]
            self.parts.append((r[keep], c[keep], lo[keep], hi[keep]))

    def tile(self, w: _Worker, ai: int, bi: int | None = None) -> None:
        """Diagonal tile of block ai (bi None) or tile (ai, bi), ai < bi, on worker w's buffers."""
        emb, h, k = self.emb, self.h, self.k
        if bi is None:
            # Its (k+1)-th largest o bounds the radius of each of its rows, which their other tiles
            # are screened against (the screen keeps a superset of the pairs with lo <= h).
            b0, b1 = self.blocks[ai]
            try:
                s = _screen(emb, b0, b1, emb.columns(b0, b1, w), w)
                if b1 - b0 > k:
                    ok = torch.topk(s, k + 1, dim=1, sorted=False).values.min(1).values.double()
                    h[b0:b1] = _upper_bounds(emb, b0, b1, ok, self.ext[ai])
            finally:  # also on an error, so that no other task waits for ever
                self.bounded[ai].set()
            self.diag[id(w)].add(s, b0, b0, _thresholds(emb, b0, b1, h[b0:b1], self.ext[ai], s.dtype), None, w)
            return
        (a0, a1), (b0, b1) = self.blocks[ai], self.blocks[bi]
        self.bounded[ai].wait()
        self.bounded[bi].wait()
        s = _screen(emb, a0, a1, emb.columns(b0, b1, w), w)
        tau_a = _thresholds(emb, a0, a1, h[a0:a1], self.ext[bi], s.dtype)
        tau_b = _thresholds(emb, b0, b1, h[b0:b1], self.ext[ai], s.dtype)
        self.off[id(w)].add(s, a0, b0, tau_a, tau_b, w)

    def finish(self, bound: _Bound, ws: _Workspace, workers, max_kept) -> torch.Tensor:
        """(N,) float64 exact squared radii from the collected pairs, through the finer tiers on
        `workers`."""
        x, n = self.x, self.n
        for collector in (*self.diag.values(), *self.off.values()):
            collector.flush()
        rows, cols, lo, hi = (torch.cat(t) for t in zip(*self.parts))
        self.parts = []
        rank = torch.full((n,), self.k, dtype=torch.long, device=x.device)  # 0-based rank among kept
        rows, cols, rank = _select(rows, cols, lo, hi, rank, n)
        if max_kept is not None and rows.numel() > max_kept * n:
            raise _Ineffective
        if _use_float32_tier(bound, x):
            lo, hi = _outward32(*_float32_intervals(x, x, rows, cols, ws, workers))
            rows, cols, rank = _select(rows, cols, lo, hi, rank, n)
        exact = _exact_sq_dists(x, x, rows, cols, ws, workers)
        order = torch.argsort(exact, stable=True)
        order = order[torch.argsort(rows[order], stable=True)]  # by row, ascending d2 within a row
        return exact[order][_row_starts(rows, n) + rank]


def _pilot_shift(emb: _Embedding, k: int, chunk: int, ws: _Workspace) -> float:
    """K for set_shift: median over the first _PILOT_ROWS rows of the (k+1)-th smallest screened d2
    within the first block (an over-estimate of the radii, which only costs a little bf16 precision)."""
    emb.set_shift(0.0)  # o = -d2^/2 up to c ~ 0
    q = min(chunk, emb.u.shape[0])
    if q <= k:
        return 0.0
    w = ws.workers[0]
    s = _screen(emb, 0, min(_PILOT_ROWS, q), emb.columns(0, q, w), w)
    ok = torch.topk(s, k + 1, dim=1, sorted=False).values.min(1).values
    return max(0.0, -2.0 * float(ok.double().median()))


def _row_starts(rows: torch.Tensor, n: int) -> torch.Tensor:
    """(n,) index of each row's first entry once the pairs are sorted by row."""
    counts = torch.bincount(rows, minlength=n)
    return torch.cumsum(counts, 0) - counts


def _outward32(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 bounds -> float32 bounds that still enclose (half the memory, and sortable as int32)."""
    return _round_down(lo, torch.float32).abs_(), _round_up(hi, torch.float32)  # abs_: no -0.0


def _select(rows, cols, lo, hi, rank, n: int):
    """Keeps the pairs that can be the rank-th smallest (0-based) true value of their row.

    rows, cols: (P,) int32; lo, hi: (P,) float32 bounds (>= 0); rank: (n,) int64.
    The rank-th smallest true value V of a row lies in [rank-th smallest lo, rank-th smallest hi]; pairs
    with hi below that range are certainly below V (counted out of the rank), pairs with lo above it are
    certainly above. Returns (rows, cols, rank) of what is kept.
    """
    starts = _row_starts(rows, n)
    lo_k = _segmented_kth(rows, lo, starts, rank)
    hi_k = _segmented_kth(rows, hi, starts, rank)
    below = hi < lo_k[rows]
    rank = rank - torch.bincount(rows[below], minlength=n)
    keep = ~below & (lo <= hi_k[rows])
    return rows[keep], cols[keep], rank


def _segmented_kth(rows, vals: torch.Tensor, starts, rank) -> torch.Tensor:
    """(n,) float32: the rank[r]-th smallest (0-based) of the non-negative float32 vals of each row r."""
    key = rows.long() * 2**31 + vals.view(torch.int32)  # float32 bits >= 0 sort as integers
    if key.device.type == "cpu":
        key.numpy().sort()  # in place: no index array, and numpy's SIMD sort is ~2x torch.sort here
    else:
        key = torch.sort(key).values
    return (key[starts + rank] & (2**31 - 1)).int().view(torch.float32)


# --- real x fake relations ------------------------------------------------------------------------


def _cross_relations(real, fake, real_e, fake_e, real_sq_radius, fake_sq_radius, chunk, out_dtypes, bound, ws):
    """Counts of the two relations prdc builds from the N x M real-fake distances, tile by tile.

    P[i, j] = v(X_i, Y_j) < r_real[i]   (precision, density, coverage)
    Q[i, j] = v(X_i, Y_j) < r_fake[j]   (recall)
    with v the prdc-rounded distance value. Returns counts (M,) int64 = sum_i P[i, j],
    covered (N,) bool = any_j P[i, j], recalled (N,) bool = any_j Q[i, j].
    """
    real_out, fake_out, cross_out = out_dtypes
    n, m = real.shape[0], fake.shape[0]
    dev = real.device
    shift = float(torch.cat([real_sq_radius, fake_sq_radius]).median())
    real_e.set_shift(shift)
    fake_e.set_shift(shift)

    def zeros():  # (counts, covered, recalled, pending)
        return (torch.zeros(m, dtype=torch.long, device=dev), torch.zeros(n, dtype=torch.bool, device=dev),
                torch.zeros(n, dtype=torch.bool, device=dev), [])

    def record(acc, i, j, in_p, in_q):
        acc[0].index_add_(0, j[in_p], torch.ones_like(j[in_p], dtype=torch.long))
        acc[1][i[in_p]] = True
        acc[2][i[in_q]] = True

    def decide(i, j, lo, hi):
        """(in_p, undecided_p, in_q, undecided_q): in below r^2 (1 - _DELTA), out above r^2."""
        rp, rq = real_sq_radius[i], fake_sq_radius[j]
        in_p, in_q = hi < rp * (1 - _DELTA), hi < rq * (1 - _DELTA)
        return in_p, ~in_p & (lo <= rp), in_q, ~in_q & (lo <= rq)

    def settle(acc):  # a collector's consumer, for one worker's accumulators
        def consume(i, j, o):
            in_p, und_p, in_q, und_q = decide(i, j, *_intervals(real_e, fake_e, i, j, o))
            record(acc, i, j, in_p, in_q)
            und = und_p | und_q
            acc[3].append((i[und], j[und], und_p[und], und_q[und]))  # left for the finer tiers

        return consume

    accs = {id(w): zeros() for w in ws.workers}
    screened = {key: _Screened(settle(acc)) for key, acc in accs.items()}
    real_blocks = [(a0, min(a0 + chunk, n)) for a0 in range(0, n, chunk)]
    fake_blocks = [(b0, min(b0 + chunk, m)) for b0 in range(0, m, chunk)]
    real_ext = [real_e.extremes(a0, a1) for a0, a1 in real_blocks]
    fake_ext = [fake_e.extremes(b0, b1) for b0, b1 in fake_blocks]

    def tile(w: _Worker, ai: int, bi: int) -> None:
        (a0, a1), (b0, b1) = real_blocks[ai], fake_blocks[bi]
        s = _screen(real_e, a0, a1, fake_e.columns(b0, b1, w), w)
        tau_p = _thresholds(real_e, a0, a1, real_sq_radius[a0:a1], fake_ext[bi], s.dtype)
        tau_q = _thresholds(fake_e, b0, b1, fake_sq_radius[b0:b1], real_ext[ai], s.dtype)
        screened[id(w)].add(s, a0, b0, tau_p, tau_q, w)

    _run(ws, [(ai, bi) for bi in range(len(fake_blocks)) for ai in range(len(real_blocks))], tile)
    for collector in screened.values():
        collector.flush()
    acc = zeros()
    for part in accs.values():
        acc[0].add_(part[0])
        acc[1].logical_or_(part[1])
        acc[2].logical_or_(part[2])
        acc[3].extend(part[3])
    counts, covered, recalled, pending = acc
    if not pending:
        return counts, covered, recalled
    i, j, und_p, und_q = (torch.cat(t) for t in zip(*pending))
    if _use_float32_tier(bound, real, fake):
        in_p, und_p2, in_q, und_q2 = decide(i, j, *_float32_intervals(real, fake, i, j, ws))
        record(acc, i, j, in_p & und_p, in_q & und_q)
        und_p, und_q = und_p & und_p2, und_q & und_q2
        und = und_p | und_q
        i, j, und_p, und_q = i[und], j[und], und_p[und], und_q[und]
    # Undecided by every bound: exact distance, rounded as prdc stores it.
    val = _prdc_value(_exact_sq_dists(real, fake, i, j, ws), cross_out)
    r_real = _prdc_value(real_sq_radius, real_out)  # (N,) prdc's NND_k values, as float64
    r_fake = _prdc_value(fake_sq_radius, fake_out)  # (M,)
    record(acc, i, j, und_p & (val < r_real[i]), und_q & (val < r_fake[j]))
    return counts, covered, recalled
