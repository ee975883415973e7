"""Precision, recall, density and coverage (Naeem et al., ICML 2020), chunked and exact.

Definitions (`prdc` package, clovaai/generative-evaluation-prdc, `prdc/prdc.py`), real X_1..X_N, fake
Y_1..Y_M, NND_k(Z_i) = distance from Z_i to its k-th nearest *other* sample of its own set, i.e. the
(k+1)-th smallest distance including Z_i itself, strict `<`, Euclidean:

    precision = 1/M  sum_j 1[exists i: |Y_j - X_i| < NND_k(X_i)]
    recall    = 1/N  sum_i 1[exists j: |X_i - Y_j| < NND_k(Y_j)]
    density   = 1/(kM) sum_j sum_i 1[|Y_j - X_i| < NND_k(X_i)]
    coverage  = 1/N  sum_i 1[min_j |X_i - Y_j| < NND_k(X_i)]    (= exists j: ... , the same relation)

`prdc` materialises the N x N, M x M and N x M distance matrices (plus an N x N int64 argpartition).
Here every squared distance d2 is known first as an interval [lo, hi], and computed more finely only
while the interval leaves the decision open, in three tiers:

1. Screen (every pair, `ganlab.metrics.prdc_screen`): one low-precision GEMM per (chunk_size x
   chunk_size) tile and a rigorous bound on its error give every pair its interval.
2. Float32 recomputation (after a bf16 screen, float32 inputs only): sum_d (x_d - y_d)^2 in float32
   from the original features, within gamma_{D+2} of the true value relative to itself.
3. Exact: sum_d (x_d - y_d)^2 in float64 from the original values.
The k-NN radius of a row is its (k+1)-th smallest d2 (_knn_sq_radii): each tier keeps only the pairs
whose interval overlaps [(k+1)-th smallest lo, (k+1)-th smallest hi] of the row, counting those provably
below, so the exact tier sees ~1-2 pairs per row. A cross pair is decided by its interval against the
two radii (_cross_relations).

Distance values are then rounded the way `prdc` (sklearn `pairwise_distances`) stores them: float32 when
both sides of a comparison are float32 arrays (sklearn computes in float64 and stores float32, then
takes the float32 sqrt), float64 otherwise, with numpy's correctly rounded sqrt; comparisons use those
values. So the result equals `prdc.compute_prdc` exactly, except where prdc's own GEMM round-off
(~1e-16 |x|^2 relative) flips a comparison: exact duplicates inside a set whose k-NN radius is then 0
(exactly 0 here, ~1e-8 in prdc), or features whose spread is ~1e-8 of their norm. Ties that survive
that rounding follow prdc's strict `<`.

If a screen's bound is too loose for the data, the computation restarts with the next wider screen
(bf16, float32, float64); results never depend on the screen, only the time does.

Threads (`ganlab.metrics.prdc_tiles`): tiles and slabs of rows or pairs are independent tasks, run by
torch.get_num_threads() Python threads (each with its own buffers) while torch itself runs
single-threaded.

Memory: O((N + M) D) for the features and their screening copies (2 bytes per value for bf16),
O(chunk_size^2) per thread for a tile and O(N + M) candidates per set; never an N x M matrix.
"""

from __future__ import annotations

import numpy as np
import torch

from ganlab.metrics.prdc_screen import (
    _Bound,
    _Embedding,
    _float32_intervals,
    _Ineffective,
    _mean64,
    _outward32,
    _row_starts,
    _screen_cross,
    _screen_dtypes,
    _screen_knn,
    _select,
    _use_float32_tier,
)
from ganlab.metrics.prdc_tiles import _SLAB_ELEMS, _run, _serial, _slabs, _Worker, _Workspace

# Not used here: helpers tests/test_metrics_prdc.py reaches as attributes of this module (prdc_mod.<name>).
from ganlab.metrics.prdc_screen import (  # noqa: F401
    _cpu_has_bf16_gemm,
    _float32_matmul_is_ieee,
    _intervals,
    _thresholds,
    _upper_bounds,
)
from ganlab.metrics.prdc_tiles import _nonzero_flat  # noqa: F401

__all__ = ["compute_prdc"]

# Relative margin on the squared radius under which a comparison is decided before rounding the
# distance values to float32/float64 (float32 rounding moves a value by < 2^-23 relative).
_DELTA = 2.0**-20
# Candidates per row left after the bf16 screen above which the float32 screen is cheaper: a float32
# recomputation costs ~D float32 loads per pair, a float32 k-NN pass ~N D / 4 extra GEMM flops per row.
_MAX_KEPT_PER_ROW = 64


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
            with _serial():  # parallel over tiles and slabs instead, see prdc_tiles._run
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


# --- k-NN radii ----------------------------------------------------------------------------------


def _knn_sq_radii(sets, k: int, chunk: int, bound: _Bound, ws: _Workspace, max_kept) -> list[torch.Tensor]:
    """Exact squared distance from each row of x to its (k+1)-th nearest row of x, self included, for
    each (x, emb) in sets: x (N, D) original features, emb its screening embedding.

    max_kept: raise _Ineffective when more than max_kept candidates per row survive the screen (None:
    never). Returns [(N,) float64 per set] (prdc.compute_nearest_neighbour_distances, squared, unrounded).
    """
    screens = _screen_knn([emb for _, emb in sets], k, chunk, ws)
    radii = {}  # the sets' finer tiers side by side, each on one worker (their sorts are serial)

    def finish(w: _Worker, s: int) -> None:
        radii[s] = _knn_tiers(sets[s][0], screens[s].candidates(), k, bound, ws, [w], max_kept)

    _run(ws, [(s,) for s in range(len(sets))], finish)
    return [radii[s] for s in range(len(sets))]


def _knn_tiers(x, candidates, k: int, bound: _Bound, ws: _Workspace, workers, max_kept) -> torch.Tensor:
    """(N,) float64 exact squared k-NN radii of x's rows from the screen's candidates (rows, cols, lo,
    hi), through the float32 and exact tiers on `workers`."""
    n = x.shape[0]
    rows, cols, lo, hi = candidates
    rank = torch.full((n,), k, dtype=torch.long, device=x.device)  # 0-based rank among kept
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


# --- real x fake relations ------------------------------------------------------------------------


def _cross_relations(real, fake, real_e, fake_e, real_sq_radius, fake_sq_radius, chunk, out_dtypes, bound, ws):
    """Counts of the two relations prdc builds from the N x M real-fake distances, tile by tile.

    P[i, j] = v(X_i, Y_j) < r_real[i]   (precision, density, coverage)
    Q[i, j] = v(X_i, Y_j) < r_fake[j]   (recall)
    with v the prdc-rounded distance value. Returns counts (M,) int64 = sum_i P[i, j],
    covered (N,) bool = any_j P[i, j], recalled (N,) bool = any_j Q[i, j].
    """
    parts = {id(w): _Relations(real_sq_radius, fake_sq_radius) for w in ws.workers}  # one per worker
    consumers = {key: part.settle for key, part in parts.items()}
    _screen_cross(real_e, fake_e, real_sq_radius, fake_sq_radius, chunk, ws, consumers)
    rel = _Relations(real_sq_radius, fake_sq_radius)
    for part in parts.values():
        rel.absorb(part)
    if rel.pending:
        pairs = [torch.cat(t) for t in zip(*rel.pending)]  # i, j, undecided_p, undecided_q
        if _use_float32_tier(bound, real, fake):
            pairs = _float32_tier(rel, real, fake, *pairs, ws)
        _exact_tier(rel, real, fake, *pairs, out_dtypes, ws)
    return rel.counts, rel.covered, rel.recalled


class _Relations:
    """P and Q of _cross_relations as far as they are decided: counts (M,) int64, covered (N,) bool,
    recalled (N,) bool, and `pending`, batches (i, j, undecided_p, undecided_q) of the pairs that the
    bounds so far left open, for the finer tiers.

    r_real (N,), r_fake (M,): the exact squared radii (float64) that the bounds are decided against.
    """

    def __init__(self, real_sq_radius: torch.Tensor, fake_sq_radius: torch.Tensor):
        self.r_real, self.r_fake = real_sq_radius, fake_sq_radius
        n, m, dev = real_sq_radius.shape[0], fake_sq_radius.shape[0], real_sq_radius.device
        self.counts = torch.zeros(m, dtype=torch.long, device=dev)
        self.covered = torch.zeros(n, dtype=torch.bool, device=dev)
        self.recalled = torch.zeros(n, dtype=torch.bool, device=dev)
        self.pending = []

    def decide(self, i, j, lo, hi):
        """(in_p, undecided_p, in_q, undecided_q): in below r^2 (1 - _DELTA), out above r^2."""
        rp, rq = self.r_real[i], self.r_fake[j]
        in_p, in_q = hi < rp * (1 - _DELTA), hi < rq * (1 - _DELTA)
        return in_p, ~in_p & (lo <= rp), in_q, ~in_q & (lo <= rq)

    def record(self, i, j, in_p, in_q) -> None:
        self.counts.index_add_(0, j[in_p], torch.ones_like(j[in_p], dtype=torch.long))
        self.covered[i[in_p]] = True
        self.recalled[i[in_q]] = True

    def settle(self, i, j, lo, hi) -> None:
        """Records what the intervals [lo, hi] decide and leaves the rest pending (the screen's consumer)."""
        in_p, und_p, in_q, und_q = self.decide(i, j, lo, hi)
        self.record(i, j, in_p, in_q)
        und = und_p | und_q
        self.pending.append((i[und], j[und], und_p[und], und_q[und]))

    def absorb(self, other: _Relations) -> None:
        """Adds another worker's relations and pending pairs to these."""
        self.counts.add_(other.counts)
        self.covered.logical_or_(other.covered)
        self.recalled.logical_or_(other.recalled)
        self.pending.extend(other.pending)


def _float32_tier(rel: _Relations, real, fake, i, j, und_p, und_q, ws: _Workspace):
    """Decides the pending pairs that their float32 intervals can; returns the others, in the same form."""
    in_p, und_p2, in_q, und_q2 = rel.decide(i, j, *_float32_intervals(real, fake, i, j, ws))
    rel.record(i, j, in_p & und_p, in_q & und_q)
    und_p, und_q = und_p & und_p2, und_q & und_q2
    und = und_p | und_q
    return i[und], j[und], und_p[und], und_q[und]


def _exact_tier(rel: _Relations, real, fake, i, j, und_p, und_q, out_dtypes, ws: _Workspace) -> None:
    """Undecided by every bound: exact distance, rounded as prdc stores it."""
    real_out, fake_out, cross_out = out_dtypes
    val = _prdc_value(_exact_sq_dists(real, fake, i, j, ws), cross_out)
    r_real = _prdc_value(rel.r_real, real_out)  # (N,) prdc's NND_k values, as float64
    r_fake = _prdc_value(rel.r_fake, fake_out)  # (M,)
    rel.record(i, j, und_p & (val < r_real[i]), und_q & (val < r_fake[j]))


# --- exact distances, rounded as prdc stores them --------------------------------------------------


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


def _prdc_value(sq_dist: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
    """Exact squared distances (float64) -> the distance values prdc compares, as float64 numbers.

    sklearn stores float64 d^2 rounded to float32 and takes a float32 sqrt for float32 inputs, and a
    float64 sqrt otherwise, both numpy's correctly rounded IEEE sqrt. torch's vectorised CPU sqrt is not
    correctly rounded (1 ulp off for ~17% of float32 and ~1% of float64 values, torch 2.x), which flips
    exact ties, so the few values needed here go through numpy.
    """
    v = sq_dist.detach().cpu().numpy().astype(np.float32 if out_dtype == torch.float32 else np.float64)
    return torch.from_numpy(np.sqrt(np.maximum(v, 0)).astype(np.float64)).to(sq_dist.device)
