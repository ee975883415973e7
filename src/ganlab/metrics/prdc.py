"""Precision, recall, density and coverage (Naeem et al., ICML 2020), chunked and exact.

Definitions (`prdc` package, clovaai/generative-evaluation-prdc, `prdc/prdc.py`), real X_1..X_N, fake
Y_1..Y_M, NND_k(Z_i) = distance from Z_i to its k-th nearest *other* sample of its own set, i.e. the
(k+1)-th smallest distance including Z_i itself, strict `<`, Euclidean:

    precision = 1/M  sum_j 1[exists i: |Y_j - X_i| < NND_k(X_i)]
    recall    = 1/N  sum_i 1[exists j: |X_i - Y_j| < NND_k(Y_j)]
    density   = 1/(kM) sum_j sum_i 1[|Y_j - X_i| < NND_k(X_i)]
    coverage  = 1/N  sum_i 1[min_j |X_i - Y_j| < NND_k(X_i)]    (= exists j: ... , the same relation)

`prdc` materialises the N x N, M x M and N x M distance matrices (plus an N x N int64 argpartition).
Here every distance is looked at in (chunk_size x chunk_size) tiles, in two stages:

1. Candidates. A tile of squared distances is computed with one float32 GEMM on mean-centred copies of
   the features, d2~ = |x|^2 + |y|^2 - 2 x.y, together with a rigorous round-off bound
   |d2~ - d2| <= e = c (|x_c|^2 + |y_c|^2), c = (2.002 D + 16) 2^-24 (rounding of the centred inputs
   to float32, gamma_D bounds of the two norms and the dot product, three final roundings; Higham,
   "Accuracy and Stability of Numerical Algorithms", Sec. 3.1). Pairs that the bound decides
   (d2~ + e below a threshold, or d2~ - e above it) are decided; the rest are candidates.
   The k-NN search keeps, per row, the k + 1 + _EXTRA_CANDIDATES smallest d2~ (running merge over
   tiles, real-real and fake-fake tiles computed once for both triangles) and checks that the kept set
   provably contains the true k + 1 nearest; rows where it does not are redone with a float64 GEMM
   and, failing that, exactly.
2. Exact decisions. Candidates get d2 = sum_d (x_d - y_d)^2 in float64 from the original values.

Distance values are then rounded the way `prdc` (sklearn `pairwise_distances`) stores them: float32 when
both sides of a comparison are float32 arrays (sklearn computes in float64 and stores float32, then
takes the float32 sqrt), float64 otherwise; comparisons use those values. So the result equals
`prdc.compute_prdc` exactly, except where prdc's own GEMM round-off (~1e-16 |x|^2 relative) flips a
comparison: exact duplicates inside a set whose k-NN radius is then 0 (exactly 0 here, ~1e-8 in
prdc). Ties that survive that rounding follow prdc's strict `<`.

Memory: O((N + M) D) for the features and their float32 copies plus O(chunk_size^2) per tile; never
an N x M matrix. With the default TF32/bf16-free float32 matmul precision ("highest") the GEMMs run in
float32; otherwise (or on request of a reduced precision) they run in float64 with c built on 2^-53.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["compute_prdc"]

# Kept candidates per row beyond the k + 1 needed. With the float32 bound the expected number of rows
# that need more is tiny for continuous features; those rows are redone (see _radii_fallback).
_EXTRA_CANDIDATES = 8
# Relative margin on the squared radius under which a comparison is decided before rounding the
# distance values to float32/float64 (float32 rounding moves a value by < 2^-23 relative).
_DELTA = 2.0**-20
# Cap on (pairs x D) elements held at once in float64 slabs (exact recomputation, centring): 8 MB each.
_EXACT_ELEMS = 1 << 20


def compute_prdc(real_features, fake_features, nearest_k: int = 5, chunk_size: int = 2048, device="cpu") -> dict[str, float]:
    """Precision, recall, density and coverage of fake features against real features.

    Args:
        real_features: (N, D) numpy array or torch tensor, finite. N > nearest_k.
        fake_features: (M, D), same D, finite. M > nearest_k.
        nearest_k: k of the k-NN radii, >= 1 (paper and `prdc` default 5).
        chunk_size: edge of the square distance tiles (memory ~ 3 chunk_size^2 x 4 bytes), >= 1.
        device: torch device to compute on ("cpu", "cuda", ...); results do not depend on it.
    Returns:
        {"precision", "recall", "coverage"} in [0, 1] and "density" in [0, N/k], as Python floats;
        equal to `prdc.compute_prdc(real, fake, nearest_k)` (see the module docstring for the one
        degenerate exception). Deterministic; nothing random.
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

    # sklearn's output dtype: float32 iff both operands are float32 (check_pairwise_arrays).
    f32 = torch.float32
    real_out = f32 if real.dtype == f32 else torch.float64
    fake_out = f32 if fake.dtype == f32 else torch.float64
    cross_out = f32 if (real.dtype == f32 and fake.dtype == f32) else torch.float64

    n, m, d = real.shape[0], fake.shape[0], real.shape[1]
    gemm_dtype = torch.float32 if _float32_matmul_is_ieee(device) else torch.float64
    tile = min(chunk_size, max(n, m))
    ws = _Workspace(tile, tile, d, gemm_dtype, device)
    approx = _Approx(real, fake, ws, gemm_dtype)
    real_sq_radius = _knn_sq_radii(real, approx.real, approx.real_sq, approx.real_csq, nearest_k, chunk_size, approx.c, ws)
    fake_sq_radius = _knn_sq_radii(fake, approx.fake, approx.fake_sq, approx.fake_csq, nearest_k, chunk_size, approx.c, ws)
    counts, covered, recalled = _cross_relations(
        real, fake, approx, real_sq_radius, fake_sq_radius, chunk_size, (real_out, fake_out, cross_out), ws
    )
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
    step = max(1, _EXACT_ELEMS // t.shape[1])
    if not all(torch.isfinite(t[s : s + step]).all() for s in range(0, t.shape[0], step)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return t


def _prdc_value(sq_dist: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
    """Exact squared distances (float64) -> the distance values prdc compares, as float64 numbers.

    sklearn stores float64 d^2 rounded to float32 and takes a float32 sqrt for float32 inputs, and a
    float64 sqrt otherwise.
    """
    return sq_dist.to(out_dtype).clamp(min=0).sqrt().to(torch.float64)


class _Workspace:
    """Reused buffers. Fresh multi-MB allocations per tile cost more than the arithmetic on this class
    of machine (page faults on every new mapping), so tiles, masks and gather buffers live here.
    """

    def __init__(self, rows: int, cols: int, d: int, tile_dtype: torch.dtype, device: torch.device):
        self.tile = torch.empty((rows, cols), dtype=tile_dtype, device=device)  # (chunk, chunk) approx d2
        self.mask = torch.empty((rows, cols), dtype=torch.bool, device=device)
        self.mask2 = torch.empty((max(rows, cols), max(rows, cols)), dtype=torch.bool, device=device)
        self.step = max(1, _EXACT_ELEMS // d)  # pairs per exact-recomputation slab
        self.d = d
        self.device = device
        self._gather = {}  # input dtype -> (step, D) buffer
        self.bx = torch.empty((self.step, d), dtype=torch.float64, device=device)
        self.by = torch.empty((self.step, d), dtype=torch.float64, device=device)

    def gather_buffer(self, dtype: torch.dtype) -> torch.Tensor:
        if dtype not in self._gather:
            self._gather[dtype] = torch.empty((self.step, self.d), dtype=dtype, device=self.device)
        return self._gather[dtype]

    def view(self, buf: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        """A (rows, cols) contiguous view on the front of a 2-D buffer."""
        return buf.view(-1)[: rows * cols].view(rows, cols)


def _exact_sq_dists(x, y, i, j, ws: _Workspace) -> torch.Tensor:
    """sum_d (x[i] - y[j])_d^2 in float64 for index pairs i, j (P,) -> (P,); difference form, no GEMM."""
    out = torch.empty(i.shape[0], dtype=torch.float64, device=x.device)
    for s in range(0, i.shape[0], ws.step):
        p = min(ws.step, i.shape[0] - s)
        bx, by = ws.bx[:p], ws.by[:p]
        gx = ws.gather_buffer(x.dtype)[:p]
        torch.index_select(x, 0, i[s : s + p], out=gx)
        bx.copy_(gx)
        gy = ws.gather_buffer(y.dtype)[:p]
        torch.index_select(y, 0, j[s : s + p], out=gy)
        by.copy_(gy)
        bx.sub_(by).square_()  # (p, D) float64
        torch.sum(bx, 1, out=out[s : s + p])
    return out


class _Approx:
    """Centred low-precision copies of both feature sets and the round-off constant of their GEMM.

    Attributes: real, fake: (N, D), (M, D) centred copies in `dtype`; real_sq, fake_sq: their squared
    norms in `dtype`; real_csq, fake_csq: float64 squared norms of the float64-centred features (the
    scale of the error bound); c: error constant, |d2~ - d2| <= c (|x_c|^2 + |y_c|^2).
    """

    def __init__(self, real: torch.Tensor, fake: torch.Tensor, ws: _Workspace, dtype: torch.dtype):
        self.dtype = dtype
        # Centring removes the common offset (e.g. non-negative CNN features) from |x|^2, which sets e.
        center = real.mean(0, dtype=torch.float64)  # (D,), accumulated in float64 without a copy
        u = 2.0**-24 if dtype == torch.float32 else 2.0**-53
        self.c = (2.002 * real.shape[1] + 16.0) * u
        self.real, self.real_csq = self._centre(real, center, dtype, ws)
        self.fake, self.fake_csq = self._centre(fake, center, dtype, ws)
        self.real_sq = (self.real * self.real).sum(1)
        self.fake_sq = (self.fake * self.fake).sum(1)

    @staticmethod
    def _centre(x, center, dtype, ws):
        out = torch.empty(x.shape, dtype=dtype, device=x.device)
        csq = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
        for s in range(0, x.shape[0], ws.step):  # float64 temporaries one slab at a time
            p = min(ws.step, x.shape[0] - s)
            xc = ws.bx[:p]
            xc.copy_(x[s : s + p]).sub_(center)
            out[s : s + p] = xc
            torch.sum(ws.by[:p].copy_(xc).square_(), 1, out=csq[s : s + p])
        return out, csq

    @staticmethod
    def tile(a, a_sq, b, b_sq, ws: _Workspace) -> torch.Tensor:
        """Approximate squared distances (rows a, columns b), |a|^2 + |b|^2 - 2 a.b, in ws.tile."""
        s = ws.view(ws.tile, a.shape[0], b.shape[0])
        torch.mm(a, b.T, out=s)
        return s.mul_(-2).add_(b_sq[None, :]).add_(a_sq[:, None])


def _float32_matmul_is_ieee(device: torch.device) -> bool:
    """True when float32 GEMMs are plain IEEE float32 (no TF32 / bf16 internal precision)."""
    if torch.get_float32_matmul_precision() != "highest":
        return False
    if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        return False
    return True


def _round_up(v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float64 thresholds -> dtype, rounded towards +inf, so `s <= _round_up(t)` keeps every s <= t."""
    r = v.to(dtype)
    return torch.where(r.double() < v, torch.nextafter(r, torch.full_like(r, float("inf"))), r)


# --- k-NN radii ----------------------------------------------------------------------------------


def _knn_sq_radii(x, xa, xa_sq, csq, k: int, chunk: int, c: float, ws: _Workspace) -> torch.Tensor:
    """Exact squared distance from each row of x to its (k+1)-th nearest row of x, self included.

    Args: x (N, D) original features; xa, xa_sq, csq: its centred low-precision copy, that copy's squared
    norms and the float64 centred squared norms (see _Approx); c: the error constant.
    Returns (N,) float64 (what prdc.compute_nearest_neighbour_distances returns, squared and unrounded).
    """
    n = x.shape[0]
    kp = min(n, k + 1 + _EXTRA_CANDIDATES)
    best_v = torch.full((n, kp), float("inf"), dtype=xa.dtype, device=x.device)  # ascending approx d2
    best_i = torch.zeros((n, kp), dtype=torch.long, device=x.device)
    starts = list(range(0, n, chunk))

    # Diagonal tiles first (topk), so that every row has a finite running threshold after one tile.
    for a0 in starts:
        a1 = min(a0 + chunk, n)
        s = _Approx.tile(xa[a0:a1], xa_sq[a0:a1], xa[a0:a1], xa_sq[a0:a1], ws)
        kk = min(kp, a1 - a0)
        v, i = torch.topk(s, kk, dim=1, largest=False, sorted=True)
        best_v[a0:a1, :kk], best_i[a0:a1, :kk] = v, i + a0
    # Upper triangle: tile (a, b), b > a, feeds rows a (along dim 1) and rows b (along dim 0).
    for ai, a0 in enumerate(starts):
        a1 = min(a0 + chunk, n)
        for b0 in starts[ai + 1 :]:
            b1 = min(b0 + chunk, n)
            s = _Approx.tile(xa[a0:a1], xa_sq[a0:a1], xa[b0:b1], xa_sq[b0:b1], ws)
            _merge_hits(best_v, best_i, a0, a1, s, b0, ws.view(ws.mask, a1 - a0, b1 - b0))
            _merge_hits(best_v, best_i, b0, b1, s.T, a0, ws.view(ws.mask2, b1 - b0, a1 - a0))

    # The kept set holds the true k+1 nearest if nothing left out can beat them: any left-out value is
    # >= best_v[:, -1], and the true (k+1)-th d2 is <= t + e with t the (k+1)-th kept approx value, so
    # a true member has approx value <= t + 2e.
    e = c * (csq + csq.max())  # (N,) float64
    bound = best_v[:, k].double() + 2 * e  # (N,)
    if kp < n:
        certified = best_v[:, -1].double() > bound
    else:
        certified = torch.ones(n, dtype=torch.bool, device=x.device)
    # Exact d2 only for kept candidates that can be among the k+1 nearest (at least the first k+1).
    need_r, need_c = (best_v.double() <= bound[:, None]).nonzero(as_tuple=True)
    exact = torch.full((n, kp), float("inf"), dtype=torch.float64, device=x.device)
    exact[need_r, need_c] = _exact_sq_dists(x, x, need_r, best_i[need_r, need_c], ws)
    radius = exact.sort(dim=1).values[:, k]
    bad = (~certified).nonzero().squeeze(1)
    if bad.numel():
        radius[bad] = _radii_fallback(x, bad, k, chunk, ws)
    return radius


def _merge_hits(best_v, best_i, r0, r1, s, c0, mask):
    """Merge the entries of tile s (rows r0:r1, columns c0:...) below each row's running k'-th value."""
    kp = best_v.shape[1]
    torch.lt(s, best_v[r0:r1, -1:], out=mask)
    hit_r, hit_c = mask.nonzero(as_tuple=True)  # row-major: hit_r ascending
    if hit_r.numel() == 0:
        return
    nrows = r1 - r0
    counts = torch.bincount(hit_r, minlength=nrows)
    pos = torch.arange(hit_r.numel(), device=s.device) - (torch.cumsum(counts, 0) - counts)[hit_r]
    width = int(counts.max())
    pad_v = torch.full((nrows, width), float("inf"), dtype=s.dtype, device=s.device)
    pad_i = torch.zeros((nrows, width), dtype=torch.long, device=s.device)
    pad_v[hit_r, pos] = s[hit_r, hit_c]
    pad_i[hit_r, pos] = hit_c + c0
    v, idx = torch.topk(torch.cat([best_v[r0:r1], pad_v], 1), kp, dim=1, largest=False, sorted=True)
    best_i[r0:r1] = torch.gather(torch.cat([best_i[r0:r1], pad_i], 1), 1, idx)
    best_v[r0:r1] = v


def _radii_fallback(x: torch.Tensor, rows: torch.Tensor, k: int, chunk: int, ws: _Workspace) -> torch.Tensor:
    """(k+1)-th smallest exact d2 from x[rows] to all of x: float64 GEMM candidates, else whole rows exactly.

    For the rare rows whose float32 candidate set could not be certified (many near-equal distances).
    """
    n, d = x.shape
    kp = min(n, k + 1 + 64)
    xr = x[rows].double()
    xr_sq = (xr * xr).sum(1)
    max_sq = 0.0
    best_v = torch.zeros((rows.numel(), 0), dtype=torch.float64, device=x.device)
    best_i = torch.zeros((rows.numel(), 0), dtype=torch.long, device=x.device)
    for b0 in range(0, n, chunk):
        xb = x[b0 : b0 + chunk].double()
        xb_sq = (xb * xb).sum(1)
        max_sq = max(max_sq, float(xb_sq.max()))
        s = (xr_sq[:, None] + xb_sq[None, :]).addmm_(xr, xb.T, alpha=-2)  # (rows, chunk)
        cand_i = torch.arange(b0, b0 + xb.shape[0], device=x.device).expand(rows.numel(), -1)
        v, idx = torch.topk(torch.cat([best_v, s], 1), min(kp, best_v.shape[1] + s.shape[1]), dim=1, largest=False)
        best_i = torch.gather(torch.cat([best_i, cand_i], 1), 1, idx)
        best_v = v
    best_v, order = best_v.sort(dim=1)
    best_i = torch.gather(best_i, 1, order)
    e = (2.002 * d + 16.0) * 2.0**-53 * (xr_sq + max_sq)  # uncentred float64 GEMM bound
    ok = (best_v[:, -1] > best_v[:, k] + 2 * e) if kp < n else torch.ones_like(xr_sq, dtype=torch.bool)
    exact = _exact_sq_dists(x, x, rows.repeat_interleave(kp), best_i.reshape(-1), ws).view(-1, kp)
    radius = exact.sort(dim=1).values[:, k]
    all_cols = torch.arange(n, device=x.device)
    for r in (~ok).nonzero().squeeze(1).tolist():  # e.g. more than k' exact duplicates of one point
        row = torch.full((n,), int(rows[r]), device=x.device)
        radius[r] = _exact_sq_dists(x, x, row, all_cols, ws).sort().values[k]
    return radius


# --- real x fake relations ------------------------------------------------------------------------


def _cross_relations(real, fake, approx, real_sq_radius, fake_sq_radius, chunk, out_dtypes, ws):
    """Counts of the two relations prdc builds from the N x M real-fake distances, tile by tile.

    P[i, j] = v(X_i, Y_j) < r_real[i]   (precision, density, coverage)
    Q[i, j] = v(X_i, Y_j) < r_fake[j]   (recall)
    with v the prdc-rounded distance value. Returns counts (M,) int64 = sum_i P[i, j],
    covered (N,) bool = any_j P[i, j], recalled (N,) bool = any_j Q[i, j].
    """
    real_out, fake_out, cross_out = out_dtypes
    n, m = real.shape[0], fake.shape[0]
    dev = real.device
    r_real = _prdc_value(real_sq_radius, real_out)  # (N,) prdc's NND_k values, as float64
    r_fake = _prdc_value(fake_sq_radius, fake_out)  # (M,)
    counts = torch.zeros(m, dtype=torch.long, device=dev)
    covered = torch.zeros(n, dtype=torch.bool, device=dev)
    recalled = torch.zeros(n, dtype=torch.bool, device=dev)
    # Decided-in below lo, decided-out above hi, candidates in between (module docstring). The error
    # scale uses each side's own norm plus the other side's largest norm in the tile.
    fake_tile_max = [approx.fake_csq[b0 : b0 + chunk].max() for b0 in range(0, m, chunk)]

    for a0 in range(0, n, chunk):
        a1 = min(a0 + chunk, n)
        xa, xa_sq, xa_csq = approx.real[a0:a1], approx.real_sq[a0:a1], approx.real_csq[a0:a1]
        rad_p = real_sq_radius[a0:a1]
        xa_max = xa_csq.max()
        for bi, b0 in enumerate(range(0, m, chunk)):
            b1 = min(b0 + chunk, m)
            rad_q = fake_sq_radius[b0:b1]
            e_p = approx.c * (xa_csq + fake_tile_max[bi])  # (rows,)
            e_q = approx.c * (approx.fake_csq[b0:b1] + xa_max)  # (cols,)
            lo_p, hi_p = rad_p * (1 - _DELTA) - e_p, rad_p + e_p
            lo_q, hi_q = rad_q * (1 - _DELTA) - e_q, rad_q + e_q
            s = _Approx.tile(xa, xa_sq, approx.fake[b0:b1], approx.fake_sq[b0:b1], ws)  # (rows, cols)
            hit = ws.view(ws.mask, a1 - a0, b1 - b0)
            hit2 = ws.view(ws.mask2, a1 - a0, b1 - b0)
            torch.le(s, _round_up(hi_p, s.dtype)[:, None], out=hit)
            torch.le(s, _round_up(hi_q, s.dtype)[None, :], out=hit2)
            ii, jj = hit.logical_or_(hit2).nonzero(as_tuple=True)
            if ii.numel() == 0:
                continue
            v = s[ii, jj].double()
            in_p, cand_p = v < lo_p[ii], v <= hi_p[ii]
            in_q, cand_q = v < lo_q[jj], v <= hi_q[jj]
            need = (cand_p & ~in_p) | (cand_q & ~in_q)
            if need.any():  # undecided by the bound: exact distance, rounded as prdc stores it
                ni, nj = ii[need] + a0, jj[need] + b0
                val = _prdc_value(_exact_sq_dists(real, fake, ni, nj, ws), cross_out)
                in_p[need] = val < r_real[ni]
                in_q[need] = val < r_fake[nj]
            counts.index_add_(0, jj[in_p] + b0, torch.ones_like(jj[in_p]))
            covered[ii[in_p] + a0] = True
            recalled[ii[in_q] + a0] = True
    return counts, covered, recalled
