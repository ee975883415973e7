"""Side-by-side benchmark: ganlab.metrics vs the reference implementations.

    python -m benchmarks.metrics            # FID 2048-d; PRDC 10k x 10k at 64-d and 2048-d
    python -m benchmarks.metrics --quick    # smaller sizes (FID 512-d, PRDC 2k x 2k)
    python -m benchmarks.metrics --n 50000  # only ours, PRDC 50k x 50k at 64-d and 2048-d

Every measurement runs in its own fresh subprocess (`python -m benchmarks.metrics --worker ...`) on the
same inputs, generated there from a seed (float32 features ~ N(0, I), covariances A A^T / 2D, as
float64). Reported per run:
  wall   seconds of the metric call only (no imports, no data generation);
  peak   the child's peak resident set size (ru_maxrss from os.wait4 on that child): everything the
         process held, including interpreter, imports (torch alone is ~0.5 GB) and the input arrays;
  +call  peak RSS minus the current RSS just before the call (VmRSS read in the child), i.e. the
         extra memory the metric call itself needed (assumes the peak falls inside the call);
  check  for PRDC, the largest |ours - reference| over the four values (exactness), for FID the
         relative difference.
The reference children import only numpy/scipy/sklearn and `prdc` / `pytorch_fid`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time


def _rss_mb() -> float:
    """Current resident set size (VmRSS) of this process in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # fallback: high-water mark


def _worker(spec: dict) -> dict:
    """Runs one measurement in this (fresh) process and returns its numbers."""
    import numpy as np

    rng = np.random.default_rng(spec["seed"])
    if spec["metric"] == "fid":
        d = spec["d"]
        a = rng.standard_normal((d, 2 * d))
        b = rng.standard_normal((d, 2 * d)) + 0.3
        args = (rng.standard_normal(d), a @ a.T / (2 * d), rng.standard_normal(d), b @ b.T / (2 * d))
        del a, b
        if spec["impl"] == "ours":
            from ganlab.metrics import frechet_distance as fn
        else:
            from pytorch_fid.fid_score import calculate_frechet_distance as fn
        before = _rss_mb()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            value = float(fn(*args))
        wall = time.perf_counter() - t0
        result = {"value": value}
    else:
        n, d = spec["n"], spec["d"]
        real = rng.standard_normal((n, d), dtype=np.float32)
        fake = rng.standard_normal((n, d), dtype=np.float32)
        if spec["impl"] == "ours":
            import torch

            from ganlab.metrics import compute_prdc

            torch.set_num_threads(spec["threads"])
            fn = lambda: compute_prdc(real, fake, nearest_k=5)  # noqa: E731
        else:
            import prdc

            fn = lambda: prdc.compute_prdc(real, fake, nearest_k=5)  # noqa: E731
        before = _rss_mb()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            out = fn()
        wall = time.perf_counter() - t0
        result = {"value": {k: float(v) for k, v in out.items()}}
    result.update(wall=wall, before_mb=before)
    return result


def _run_child(spec: dict) -> dict:
    """Spawns a worker, waits with os.wait4 to read that child's own rusage (peak RSS)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.metrics", "--worker", json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec} failed with code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def _fmt_row(name, r):
    return f"  {name:<10} {r['wall']:>9.2f} s {r['peak_mb']:>9.0f} MB {r['peak_mb'] - r['before_mb']:>9.0f} MB"


def _case(title: str, spec: dict, with_reference: bool) -> None:
    print(f"\n{title}")
    print(f"  {'impl':<10} {'wall':>11} {'peak RSS':>12} {'+call':>12}")
    ours = _run_child({**spec, "impl": "ours"})
    print(_fmt_row("ours", ours), flush=True)
    if not with_reference:
        print(f"  result: {ours['value']}")
        return
    ref = _run_child({**spec, "impl": "reference"})
    print(_fmt_row("reference", ref))
    print(
        f"  ratio      {ref['wall'] / ours['wall']:>9.1f} x faster, peak RSS {ours['peak_mb'] / ref['peak_mb']:.0%} "
        f"of reference, +call {(ours['peak_mb'] - ours['before_mb']) / max(ref['peak_mb'] - ref['before_mb'], 1):.0%}"
    )
    if spec["metric"] == "fid":
        print(f"  values: ours {ours['value']:.10g}  reference {ref['value']:.10g}  "
              f"rel diff {abs(ours['value'] - ref['value']) / abs(ref['value']):.2e}")
    else:
        diff = max(abs(ours["value"][k] - ref["value"][k]) for k in ref["value"])
        print(f"  values: ours {ours['value']}\n          ref  {ref['value']}\n  max |diff| {diff:.2e}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (FID 512-d, PRDC 2000 x 2000)")
    parser.add_argument("--n", type=int, default=None, help="PRDC N = M; above 10000 only ours runs")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for ours (default: torch's)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return

    import torch

    threads = args.threads or torch.get_num_threads()
    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}  host {platform.node()}  "
          f"python {platform.python_version()}  torch {torch.__version__}")
    print(f"cpu count {os.cpu_count()}  torch threads {threads}  load average {os.getloadavg()}")
    n = args.n or (2000 if args.quick else 10000)
    with_reference = n <= 10000
    if args.n is None:
        d_fid = 512 if args.quick else 2048
        _case(f"FID, {d_fid}-d covariances (ours vs pytorch_fid.calculate_frechet_distance)",
              {"metric": "fid", "d": d_fid, "seed": 0}, True)
    for d in (64, 2048):
        _case(f"PRDC, {n} x {n}, {d}-d float32, k=5 (ours vs prdc.compute_prdc)"
              + ("" if with_reference else " [reference skipped]"),
              {"metric": "prdc", "n": n, "d": d, "seed": 1, "threads": threads}, with_reference)


if __name__ == "__main__":
    main()
