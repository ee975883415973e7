"""Side-by-side benchmark: ganlab.metrics vs the reference implementations.

    python -m benchmarks.metrics                      # FID 2048-d; PRDC 10k x 10k at 64-d and 2048-d
    python -m benchmarks.metrics --quick              # smaller sizes (FID 512-d, PRDC 2k x 2k)
    python -m benchmarks.metrics --n 10000 --d 2048   # only PRDC, only 2048-d
    python -m benchmarks.metrics --n 50000            # only ours, PRDC 50k x 50k at 64-d and 2048-d
    python -m benchmarks.metrics --n 10000 --repeat 3 # best of 3 fresh runs per side

Every measurement runs in its own fresh subprocess (`python -m benchmarks.metrics --worker ...`) on the
same inputs, generated there from a seed (float32 features ~ N(0, I), covariances A A^T / 2D, as
float64). Reported per side (with --repeat, the fastest run's wall and cpu, the largest memory):
  wall   seconds of the metric call only (no imports, no data generation);
  cpu    process CPU seconds (all threads) of the call: cpu / wall well above the thread count means
         threads spinning, wall well above cpu / threads means waiting for cores other processes hold;
  peak   the child's peak resident set size up to the end of the call (VmHWM read in the child right
         after it): everything the process held, including interpreter, imports (torch alone is
         ~0.7 GB RSS for a CUDA build, the reference's numpy/sklearn ~0.2 GB) and the input arrays.
         Not ru_maxrss from wait4: that also covers interpreter shutdown, where unloading torch alone
         raises RSS by ~0.2 GB (measured: `import torch` then exit, VmHWM 711 MB, ru_maxrss 915 MB);
  +call  peak RSS minus the current RSS just before the call (VmRSS read in the child), i.e. the
         extra memory the metric call itself needed;
  load   the 1-minute load average when the child started (other work on the machine skews both
         sides; compare runs taken at a similar load);
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


def _rss_mb(field: str = "VmRSS") -> float:
    """Current (VmRSS) or peak (VmHWM) resident set size of this process in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
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
        t0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            value = float(fn(*args))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        result = {"value": value, "peak_mb": _rss_mb("VmHWM")}
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
        t0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            out = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        result = {"value": {k: float(v) for k, v in out.items()}, "peak_mb": _rss_mb("VmHWM")}
    result.update(wall=wall, cpu=cpu, before_mb=before)
    return result


def _run_child(spec: dict) -> dict:
    """Runs one worker in a fresh interpreter and returns its numbers plus the load it started under."""
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.metrics", "--worker", json.dumps(spec)], stdout=subprocess.PIPE, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec} failed with code {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(load=load, call_mb=result["peak_mb"] - result["before_mb"])
    return result


def _best_of(spec: dict, repeat: int) -> dict:
    """`repeat` fresh children: the fastest run's times and load, the largest memory of all runs."""
    runs = [_run_child(spec) for _ in range(repeat)]
    best = dict(min(runs, key=lambda r: r["wall"]))
    best.update(peak_mb=max(r["peak_mb"] for r in runs), call_mb=max(r["call_mb"] for r in runs))
    return best


def _fmt_row(name, r):
    return (f"  {name:<10} {r['wall']:>9.2f} s {r['cpu']:>9.2f} s {r['peak_mb']:>9.0f} MB {r['call_mb']:>9.0f} MB"
            f" {r['load']:>6.2f}")


def _case(title: str, spec: dict, with_reference: bool, repeat: int) -> None:
    print(f"\n{title}")
    print(f"  {'impl':<10} {'wall':>11} {'cpu':>11} {'peak RSS':>12} {'+call':>12} {'load':>6}")
    ours = _best_of({**spec, "impl": "ours"}, repeat)
    print(_fmt_row("ours", ours), flush=True)
    if not with_reference:
        print(f"  result: {ours['value']}")
        return
    ref = _best_of({**spec, "impl": "reference"}, repeat)
    print(_fmt_row("reference", ref))
    print(
        f"  ratio      {ref['wall'] / ours['wall']:>9.1f} x faster, peak RSS {ours['peak_mb'] / ref['peak_mb']:.0%} "
        f"of reference, +call {ours['call_mb'] / max(ref['call_mb'], 1):.0%}"
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
    parser.add_argument("--d", type=int, nargs="+", default=[64, 2048], help="PRDC feature dimensions")
    parser.add_argument("--repeat", type=int, default=1, help="fresh runs per side; the fastest is reported")
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
              {"metric": "fid", "d": d_fid, "seed": 0}, True, args.repeat)
    for d in args.d:
        _case(f"PRDC, {n} x {n}, {d}-d float32, k=5 (ours vs prdc.compute_prdc)"
              + ("" if with_reference else " [reference skipped]"),
              {"metric": "prdc", "n": n, "d": d, "seed": 1, "threads": threads}, with_reference, args.repeat)


if __name__ == "__main__":
    main()
