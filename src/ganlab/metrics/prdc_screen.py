"""The screen of `ganlab.metrics.prdc`: bounds on every pair's squared distance from one cheap GEMM per
tile, so that only the pairs near a decision are computed again, in float32 and then exactly.

What it does. Both sets are centred on the real mean (`_mean64`) and rounded to the screening dtype,
x^_i (`_Embedding`): bfloat16 on CPUs with native bf16 dot products (AVX512-BF16 or AMX; ~4x the float32
GEMM rate here), else float32, or float64 when float32 matmuls are not IEEE (TF32/bf16 matmul
precision); `_screen_dtypes` lists them fastest first. Rows [x^_i, h_i, l_i, 1, 1] against columns
[x^_j, 1, 1, h_j, l_j], h + l ~ K/4 - |x^|^2/2 (a hi/lo pair in the screening dtype) for a typical
squared radius K, make one GEMM (`_screen`) return
    o_ij = x^_i.x^_j + (h_i + l_i) + (h_j + l_j) = (c_i + c_j - |x^_i - x^_j|^2) / 2,
c_i = |x^_i|^2 + 2 (h_i + l_i) known in float64: o is small near the radii, so a bf16 output rounds
little. With float32 accumulation (oneDNN's default "strict" accumulation mode for bf16 inputs;
Higham, "Accuracy and Stability of Numerical Algorithms", Sec. 3.1: gamma_n = n u / (1 - n u))
    | |x^_i - x^_j|^2 - (c_i + c_j - 2 o_ij) | <= 2 (gamma_{D+4} (|x^_i||x^_j| + |h_i| + |l_i| + |h_j|
                                                + |l_j|) + u_out |o_ij|)   (+ float64 and underflow terms)
with u_out = 2^-7 / (1 - 2^-7) for a bf16 output (round-to-nearest would need only 2^-8). The input
rounding delta_i = (X_i - mean) - x^_i is measured per row (|delta_i| <= rho_i, x^_i.delta_i = pi_i),
which turns that into an interval [lo, hi] for the true squared distance (`_intervals`). Per-row and
per-column thresholds on o (`_thresholds`, one compare per tile) keep every pair whose interval can
matter. For the k-NN radii (`_screen_knn`) a row's diagonal tile bounds its radius from above
(`_upper_bounds`) before its other tiles are screened; for the real x fake pairs (`_screen_cross`) the
exact radii are the thresholds. The float32 tier's bound (`_float32_intervals`): sum_d (x_d - y_d)^2 in
float32 from the original features is within gamma_{D+2} of the true value relative to itself.
`_select` keeps, of each row's intervals, those overlapping [(k+1)-th smallest lo, (k+1)-th smallest
hi], counting those provably below, so the exact tier sees ~1-2 pairs per row.

Why it is exact. A pair is dropped only when its interval proves it cannot change a result, and every
bound is rigorous: the error terms above, each float64 step padded by _F64_SLACK, thresholds rounded
towards -inf and upper bounds towards +inf in the compared dtype, subnormals flushed by DAZ/FTZ allowed
for. tests/test_metrics_prdc.py checks that the intervals contain the float64 truth and are tight.

What it buys. The screen is one low-precision GEMM per tile instead of prdc's three float64 distance
matrices; the float32 and float64 recomputations touch ~1-2 pairs per row. If a screen's bound is too
loose for the data (too many candidates per row, e.g. tight clusters far from the mean) or the float32
accumulation could overflow, `_Ineffective` restarts the computation with the next wider screen;
results never depend on the screen, only the time does.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import torch

from ganlab.metrics.prdc_tiles import _blocks, _run, _Screened, _slabs, _Worker, _Workspace

# Rows of the first block used to estimate the typical squared radius K before a k-NN pass.
_PILOT_ROWS = 256
# Relative slack for float64 rounding in the bound arithmetic itself (a few ulps, taken generously).
_F64_SLACK = 2.0**-45


class _Ineffective(Exception):
    """The screening dtype cannot represent these features usefully; retry with the next one."""


# --- which screens -------------------------------------------------------------------------------


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


# --- the screening embedding and its error bound -------------------------------------------------


def _mean64(x: torch.Tensor, ws: _Workspace) -> torch.Tensor:
    """(D,) float64 column mean of x, summed slab by slab (x.mean(0, dtype=float64) and x.sum(0,
    dtype=float64) first copy all of x to float64)."""
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    w = ws.workers[0]
    for s, p in _slabs(ws, x.shape[0]):
        total += w.f64[0][:p].copy_(x[s : s + p]).sum(0)
    return total / x.shape[0]


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


# --- the screening passes ------------------------------------------------------------------------


def _screen_knn(embs: list[_Embedding], k: int, chunk: int, ws: _Workspace) -> list[_KnnScreen]:
    """Screens each set of `embs` against itself for its k-NN radii, the tiles of all sets as one batch
    of tasks (no idle worker between sets). Returns one _KnnScreen per set: its candidates() are every
    pair that can be its row's (k+1)-th nearest, self included."""
    screens = [_KnnScreen(emb, k, chunk, ws) for emb in embs]
    # All diagonal tiles first: a worker then never waits long for the bound an off-diagonal tile needs.
    tasks = [(p.diagonal, bi) for p in screens for bi in range(len(p.blocks))]
    tasks += [(p.off_diagonal, ai, bi) for p in screens for bi in range(len(p.blocks)) for ai in range(bi)]
    _run(ws, tasks, lambda w, tile, *blocks: tile(w, *blocks))
    return screens


class _KnnScreen:
    """The screen of one set against itself: the upper triangle of its tiles, keeping the pairs with
    lo <= h[row], h (n,) float64 an upper bound on each row's squared k-NN radius."""

    def __init__(self, emb: _Embedding, k: int, chunk: int, ws: _Workspace):
        n = emb.u.shape[0]
        self.emb, self.k = emb, k
        emb.set_shift(_pilot_shift(emb, k, chunk, ws))
        self.h = torch.full((n,), float("inf"), dtype=torch.float64, device=emb.u.device)  # radius upper bounds
        self.blocks = _blocks(n, chunk)
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

    def diagonal(self, w: _Worker, ai: int) -> None:
        """Diagonal tile of block ai, on worker w's buffers. Its (k+1)-th largest o bounds the radius of
        each of its rows, which their other tiles are screened against (the screen keeps a superset of
        the pairs with lo <= h)."""
        emb, h, k = self.emb, self.h, self.k
        b0, b1 = self.blocks[ai]
        try:
            s = _screen(emb, b0, b1, emb.columns(b0, b1, w), w)
            if b1 - b0 > k:
                ok = torch.topk(s, k + 1, dim=1, sorted=False).values.min(1).values.double()
                h[b0:b1] = _upper_bounds(emb, b0, b1, ok, self.ext[ai])
        finally:  # also on an error, so that no other task waits for ever
            self.bounded[ai].set()
        self.diag[id(w)].add(s, b0, b0, _thresholds(emb, b0, b1, h[b0:b1], self.ext[ai], s.dtype), None, w)

    def off_diagonal(self, w: _Worker, ai: int, bi: int) -> None:
        """Tile (ai, bi), ai < bi, on worker w's buffers, once both blocks' radius bounds are final."""
        emb, h = self.emb, self.h
        (a0, a1), (b0, b1) = self.blocks[ai], self.blocks[bi]
        self.bounded[ai].wait()
        self.bounded[bi].wait()
        s = _screen(emb, a0, a1, emb.columns(b0, b1, w), w)
        tau_a = _thresholds(emb, a0, a1, h[a0:a1], self.ext[bi], s.dtype)
        tau_b = _thresholds(emb, b0, b1, h[b0:b1], self.ext[ai], s.dtype)
        self.off[id(w)].add(s, a0, b0, tau_a, tau_b, w)

    def candidates(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows, cols, lo, hi), (P,) each: int32 indices and float32 bounds (rounded outward) of every
        screened pair with lo <= h[row]. Once, after all tiles have run."""
        for collector in (*self.diag.values(), *self.off.values()):
            collector.flush()
        rows, cols, lo, hi = (torch.cat(t) for t in zip(*self.parts))
        self.parts = []
        return rows, cols, lo, hi


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


def _screen_cross(
    real_e: _Embedding, fake_e: _Embedding, real_sq_radius, fake_sq_radius, chunk: int, ws: _Workspace, consumers
) -> None:
    """Screens every real x fake pair, tile by tile, against both exact squared radii (real (N,), fake
    (M,), float64).

    Every pair with lo <= real_sq_radius[i] or lo <= fake_sq_radius[j] reaches consumers[id(w)](i, j,
    lo, hi), w the worker whose task screened it, in batches: i, j (P,) int32, lo, hi (P,) float64. The
    other pairs are farther than both radii.
    """
    shift = float(torch.cat([real_sq_radius, fake_sq_radius]).median())
    real_e.set_shift(shift)
    fake_e.set_shift(shift)
    screened = {key: _Screened(_with_intervals(real_e, fake_e, consume)) for key, consume in consumers.items()}
    real_blocks, fake_blocks = _blocks(real_e.u.shape[0], chunk), _blocks(fake_e.u.shape[0], chunk)
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


def _with_intervals(ea: _Embedding, eb: _Embedding, consume):
    """A _Screened consumer (i, j, o) that hands consume(i, j, lo, hi) the pairs' intervals."""
    return lambda i, j, o: consume(i, j, *_intervals(ea, eb, i, j, o))


# --- the finer tiers' bounds, and the candidates they keep -----------------------------------------


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


def _row_starts(rows: torch.Tensor, n: int) -> torch.Tensor:
    """(n,) index of each row's first entry once the pairs are sorted by row."""
    counts = torch.bincount(rows, minlength=n)
    return torch.cumsum(counts, 0) - counts
