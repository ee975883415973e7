"""Tiles, threads and buffers of `ganlab.metrics.prdc`: how the all-pairs work is cut up and run.

What it does: cuts the N x M pairs of two feature sets into (chunk x chunk) tiles (`_blocks`) and the
per-row and per-pair loops into slabs (`_slabs`); runs tiles and slabs as independent tasks on Python
threads, each task on the preallocated buffers of one worker (`_run`, `_Worker`, `_Workspace`), with
torch's own CPU ops single-threaded meanwhile (`_serial`); and turns the entries of a tile that pass a
threshold into global (row, column) pairs, in batches (`_Screened`, `_nonzero_flat`).

Why it is exact: nothing here rounds a value that reaches a result. The tasks write disjoint slices or
per-worker accumulators, and everything downstream of the collected pairs gives the same result in any
order, so the numbers do not depend on the thread count or on the schedule (tests/test_metrics_prdc.py
compares 1 and 3 threads).

What it buys: never an N x M matrix (O(chunk^2) memory per worker); no fresh multi-MB allocation per
tile (page faults cost more than the arithmetic on this class of machine); and parallelism that holds
up on a shared machine, where one fork-join per torch op waits for a time slice at every join (numbers
in `_run`).
"""

from __future__ import annotations

import contextlib
import queue
from concurrent.futures import ThreadPoolExecutor

import torch

# (rows or pairs) x D elements per slab of the row loops (float64: 4 MB per buffer, 3 per thread).
_SLAB_ELEMS = 1 << 19
# Screened pairs processed per batch: bounds the float64 temporaries of the interval arithmetic.
_BATCH_PAIRS = 1 << 15
# Elements of the per-pair threshold rows materialised at once by a two-sided screen (2 MB).
_THR_ELEMS = 1 << 19
# Multiply-adds per tile below which tiles run on one thread (a 512 x 512 tile at D = 60).
_MIN_PARALLEL_MACS = 1 << 24


def _blocks(n: int, chunk: int) -> list[tuple[int, int]]:
    """Row ranges (b0, b1) of the tiles' blocks: range(n) cut every `chunk` rows, the last one ragged."""
    return [(b0, min(b0 + chunk, n)) for b0 in range(0, n, chunk)]


def _slabs(ws: _Workspace, total: int):
    """Tasks (s, p) covering range(total) in slabs of at most ws.step."""
    return [(s, min(ws.step, total - s)) for s in range(0, total, ws.step)]


@contextlib.contextmanager
def _serial():
    """torch's CPU ops single-threaded on every thread (restored afterwards); see _run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _run(ws: _Workspace, tasks, fn, workers=None) -> None:
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


class _Worker:
    """One thread's buffers: a tile's GEMM output o, its float32 copy (bf16 screens), its mask, a few
    rows of per-pair thresholds, a column-form block; and slabs for the row loops, three float64 and
    two float32 (step, D), which share memory with the tile buffers (a worker never runs a tile and a
    slab at once).
    """

    def __init__(self, tile: int, d: int, step: int, dtype: torch.dtype, device: torch.device):
        self.out = torch.empty((tile, tile), dtype=dtype, device=device)
        self.cols = torch.empty((tile, d + 4), dtype=dtype, device=device)
        self.cols_key = None  # which block cols holds, see prdc_screen._Embedding.columns
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
