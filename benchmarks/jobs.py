"""`make repro`'s two stages at a time against `dvc repro`'s one, on the real train stage.

    dvc repro features@mnist                     # once: the data and the learning curves' feature network
    python -m benchmarks.jobs                    # vanilla and wgan, 2 epochs each, 2 rounds
    python -m benchmarks.jobs --experiments vanilla hinge_bn --epochs 3

Each round times, in the same minutes, the two ways of running two independent train stages: one after the other
with torch's own thread count (what `dvc repro` does: all cores to one stage) and both at once with one thread
each (what `python -m ganlab.repro --jobs 2` does on 2 cores). Every run is the pipeline's own command,
`python stages/train.py` as dvc.yaml writes it (per epoch: the steps, the learning-curve point, the grid, the
checkpoint; MLflow logging into a temporary database), on the prepared MNIST, from a params.yaml that differs from
the project's only in the seeds (`[0]`, the experiments' own `seeds` removed) and the experiments'
`num_epochs.quick`; outputs go to a temporary folder, MLflow to a database created before the timings.
Process start-up (imports) is inside both timings, as in the pipeline. Rounds alternate the order of the two
ways; the best round of each is kept. Prints the wall time of each way and their ratio (> 1: side by side is
faster).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA, NET = ROOT / "data/prepared/mnist.npz", ROOT / "data/features/mnist/network.pt"


def write_params(dest: Path, experiments: list[str], epochs: int) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["seeds"] = [0]
    for name in experiments:
        params["experiments"][name].pop("seeds", None)  # the experiment's own seeds would override the global ones
        params[name]["num_epochs"]["quick"] = epochs
    path = dest / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def train_command(experiment: str, params: Path, out: Path) -> list[str]:
    """dvc.yaml's train@ command, outputs under `out`."""
    return [sys.executable, str(ROOT / "stages/train.py"), "--params", str(params), "--experiment", experiment,
            "--data", str(DATA), "--out", str(out / experiment), "--metrics", str(out / f"{experiment}.json"),
            "--losses", str(out / f"{experiment}_losses.csv"), "--curve", str(out / f"{experiment}_curve.csv"),
            "--net", str(NET)]


def run_env(tmp: Path, threads: int | None) -> dict[str, str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "MLFLOW_DISABLE_TELEMETRY": "true",
           "GANLAB_PROGRESS": "0"}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def timed(commands: list[list[str]], env: dict[str, str], parallel: bool) -> float:
    """Wall seconds of `commands`, one after the other or all at once."""
    t0 = time.perf_counter()
    if parallel:
        procs = [subprocess.Popen(c, env=env, cwd=ROOT, stdout=subprocess.DEVNULL) for c in commands]
        codes = [p.wait() for p in procs]
    else:
        codes = [subprocess.run(c, env=env, cwd=ROOT, stdout=subprocess.DEVNULL).returncode for c in commands]
    if any(codes):
        raise SystemExit(f"a train stage failed (exit codes {codes})")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs=2, default=["vanilla", "wgan"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for path in (DATA, NET):
        if not path.exists():
            raise SystemExit(f"{path.relative_to(ROOT)} is missing: run `dvc repro features@mnist` first")
    cores = os.cpu_count() or 1
    print(f"{args.experiments[0]} and {args.experiments[1]}, {args.epochs} epochs each, seed 0, {cores} cores")
    best = {"one after the other": float("inf"), "side by side": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        params = write_params(tmp, args.experiments, args.epochs)
        # the MLflow database exists before the pipeline's stages run (`make repro` creates it first)
        subprocess.run([sys.executable, "-m", "ganlab.tracking", "--init"], env=run_env(tmp, None), cwd=ROOT,
                       stdout=subprocess.DEVNULL, check=True)
        for r in range(args.rounds):
            ways = list(best) if r % 2 == 0 else list(reversed(best))
            for way in ways:
                out = tmp / f"round{r}-{way.replace(' ', '_')}"
                commands = [train_command(e, params, out) for e in args.experiments]
                parallel = way == "side by side"
                seconds = timed(commands, run_env(tmp, max(1, cores // 2) if parallel else None), parallel)
                best[way] = min(best[way], seconds)
                print(f"round {r + 1}: {way}: {seconds:.1f} s", flush=True)
    ratio = best["one after the other"] / best["side by side"]
    print(f"best: one after the other {best['one after the other']:.1f} s, side by side {best['side by side']:.1f} s: "
          f"side by side is {ratio:.2f}x as fast")


if __name__ == "__main__":
    main()
