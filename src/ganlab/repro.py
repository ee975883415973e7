"""`dvc repro` on every core: independent stages side by side, each one thread, DVC deciding what runs.

    python -m ganlab.repro              # what `make repro` runs: --jobs = the CPU's cores (2 here)
    python -m ganlab.repro --jobs 1     # plain `dvc repro`

Why: the default pipeline is ~90 stages of small networks (MLPs of batch 64), whose steps do not keep two cores
busy: on the 2-core CPU one vanilla bf16 step takes 16.7 ms with 2 threads and 22.5 ms with 1, so two trainings
of 1 thread each, side by side, make a step every 11.4 ms, 1.46x the throughput (README, "Measured timings").
DVC 3 runs one stage at a time.

How, for `--jobs N` > 1:
1. `dvc status --json` names the stages that must run (changed code, params or data, missing outputs); they and
   everything downstream of them in DVC's own graph are the work. Nothing changed: nothing starts, and the
   driver is done in the time of `dvc status` (4 s here; a no-op `dvc repro` takes 6-7 s).
2. A stage of the work starts once every upstream stage of the work has finished, at most N at once, the one
   with the longest expected path to the end first (expected seconds: a train stage's `train_seconds` in its
   committed `metrics/train/<exp>.json`, else `DEFAULT_SECONDS`).
3. Each stage is `dvc --wait-for-lock repro --single-item <stage>`: DVC itself decides whether it runs (a stage
   whose inputs came out unchanged is skipped), and saves its outputs and its dvc.lock entry under the repo lock.
   DVC releases that lock while a stage's command runs and keeps read/write locks per output, which is what
   makes two `dvc repro` side by side safe.
4. Each stage gets `cores // N` threads (`OMP_NUM_THREADS`, which torch reads at start), whatever else runs:
   the same `--jobs` gives the same numbers. The MLP trainings are bit-identical at 1 and 2 threads (measured);
   convolutional networks (the LeNet feature space, the DCGANs) are not, so their numbers depend on `--jobs` at
   float round-off, amplified by training like any change of arithmetic order.
5. Last, a plain `dvc repro` (when something ran): it reruns nothing when all went well, and anything missed runs
   there, in order.

A stage's output lines are printed as they come, prefixed `[<stage>]`. When a stage fails, no new stage starts,
the running ones finish (training checkpoints every epoch, so a killed run resumes), and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ganlab.io import read_json
from ganlab.paths import repo_root

DEFAULT_SECONDS = 60.0  # a stage without a record: sampling, evaluation, post-processing take about a minute
GIB = 1 << 30
MEMORY_PER_JOB = 3 * GIB  # a stage process: torch ~0.7 GB, a training or an N = 5000 evaluation 1-2 GB more


def default_jobs() -> int:
    """The CPU's cores, at most one per 3 GiB of memory."""
    cores = os.cpu_count() or 1
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(1, min(cores, memory // MEMORY_PER_JOB))


def stage_graph(root: Path) -> dict[str, set[str]]:
    """Every pipeline stage -> the stages it depends on (DVC's own graph: an output of one is a dependency of the
    other)."""
    from dvc.repo import Repo

    def address(stage) -> str:  # as `dvc status` run at `root` names it: `train@vanilla`, `sub/dvc.yaml:name`
        dvcfile = Path(stage.path).resolve().relative_to(root.resolve())
        return stage.name if dvcfile == Path("dvc.yaml") else f"{dvcfile}:{stage.name}"

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        return {address(stage): {address(up) for up in graph.successors(stage)} for stage in graph.nodes}


def changed_stages(root: Path, env: dict[str, str]) -> set[str]:
    """The stages `dvc status` lists (anything changed, an output missing)."""
    proc = subprocess.run(["dvc", "status", "--json"], cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc status failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return set(json.loads(proc.stdout or "{}"))


def dependents(graph: dict[str, set[str]], within: set[str]) -> dict[str, set[str]]:
    """Each stage of `within` -> the stages of `within` that depend on it directly (`graph` reversed)."""
    users: dict[str, set[str]] = {name: set() for name in within}
    for name in within:
        for up in graph[name] & within:
            users[up].add(name)
    return users


def downstream_closure(graph: dict[str, set[str]], start: set[str]) -> set[str]:
    """`start` and every stage that depends on one of them, directly or not."""
    users = dependents(graph, set(graph))
    work, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name not in work:
            work.add(name)
            todo.extend(users.get(name, ()))
    return work


def expected_seconds(root: Path, stage: str) -> float:
    """A train stage's committed `train_seconds` (all its seeds), else `DEFAULT_SECONDS`."""
    kind, _, item = stage.partition("@")
    record = root / "metrics" / "train" / f"{item}.json"
    if kind == "train" and record.is_file():
        try:
            return float(read_json(record)["train_seconds"])
        except (ValueError, KeyError, TypeError):
            pass
    return DEFAULT_SECONDS


def critical_path(graph: dict[str, set[str]], work: set[str], cost: dict[str, float]) -> dict[str, float]:
    """Each stage of `work` -> its own expected seconds plus the longest chain of work that waits on it."""
    users = dependents(graph, work)
    memo: dict[str, float] = {}

    def length(name: str) -> float:
        if name not in memo:
            memo[name] = cost[name] + max((length(u) for u in users[name]), default=0.0)
        return memo[name]

    for name in work:
        length(name)
    return memo


@dataclass
class Running:
    stage: str
    proc: subprocess.Popen
    started: float
    reader: threading.Thread = field(repr=False)


class Scheduler:
    """Runs the work, at most `jobs` stages at once, in critical-path order (module docstring, steps 2-4)."""

    def __init__(self, root: Path, graph: dict[str, set[str]], work: set[str], jobs: int, env: dict[str, str],
                 out=sys.stdout):
        self.root, self.jobs, self.out = root, jobs, out
        self.waits_on = {name: graph[name] & work for name in work}
        self.priority = critical_path(graph, work, {name: expected_seconds(root, name) for name in work})
        threads = max(1, (os.cpu_count() or 1) // jobs)
        self.env = {**env, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        self.pending, self.done, self.failed = set(work), set(), []
        self.running: list[Running] = []
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def say(self, line: str) -> None:
        with self.lock:
            print(line, file=self.out, flush=True)

    def ready(self) -> list[str]:
        return sorted((s for s in self.pending if self.waits_on[s] <= self.done), key=lambda s: (-self.priority[s], s))

    def start(self, stage: str) -> None:
        self.pending.discard(stage)
        proc = subprocess.Popen(["dvc", "--wait-for-lock", "repro", "--single-item", stage], cwd=self.root,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        reader = threading.Thread(target=self._relay, args=(stage, proc), daemon=True)
        reader.start()
        self.running.append(Running(stage, proc, time.monotonic(), reader))
        self.say(f"[repro] start {stage} ({len(self.done)} of {len(self.waits_on)} done)")

    def _relay(self, stage: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.say(f"[{stage}] {line.rstrip()}")

    def reap(self) -> None:
        for run in [r for r in self.running if r.proc.poll() is not None]:
            self.running.remove(run)
            run.reader.join()
            minutes = (time.monotonic() - run.started) / 60
            if run.proc.returncode == 0:
                self.done.add(run.stage)
                self.say(f"[repro] done {run.stage} in {minutes:.1f} min")
            else:
                self.failed.append(run.stage)
                self.say(f"[repro] FAILED {run.stage} (exit {run.proc.returncode}) after {minutes:.1f} min; "
                         "no new stage starts")

    def run(self, poll_s: float = 0.5) -> bool:
        """Everything in the work, or up to the first failure; True when every stage succeeded."""
        try:
            while self.running or (self.pending and not self.failed):
                while not self.failed and len(self.running) < self.jobs and (ready := self.ready()):
                    self.start(ready[0])
                if not self.running:  # pending stages wait on a failed one
                    break
                time.sleep(poll_s)
                self.reap()
        except KeyboardInterrupt:  # Ctrl-C reached the running stages too (one process group): let them stop
            for run in self.running:
                try:
                    run.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    run.proc.kill()
            raise
        return not self.failed and not self.pending


def repro(root: Path, jobs: int, env: dict[str, str] | None = None, out=sys.stdout) -> int:
    """The pipeline at `root` on `jobs` parallel stages, then a plain `dvc repro`; the exit status."""
    env = dict(os.environ if env is None else env)
    if jobs == 1:
        return subprocess.run(["dvc", "repro"], cwd=root, env=env).returncode
    changed = changed_stages(root, env)
    if not changed:  # what `dvc repro` would find, without its second look (4 s instead of 6-7 s here)
        print("[repro] dvc status: nothing changed, nothing to run", file=out, flush=True)
        return 0
    scheduler = Scheduler(root, graph := stage_graph(root), downstream_closure(graph, changed), jobs, env, out)
    print(f"[repro] {len(scheduler.pending)} stages to check, {jobs} at a time, "
          f"{scheduler.env['OMP_NUM_THREADS']} thread(s) each", file=out, flush=True)
    if not scheduler.run():
        print(f"[repro] stopped: {', '.join(scheduler.failed) or 'a stage'} failed", file=out, flush=True)
        return 1
    print(f"[repro] {len(scheduler.done)} stages in {(time.monotonic() - scheduler.t0) / 60:.1f} min; "
          "now a plain `dvc repro` (nothing should be left)", file=out, flush=True)
    return subprocess.run(["dvc", "repro"], cwd=root, env=env).returncode


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="stages at once (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    try:
        sys.exit(repro(repo_root(), args.jobs))
    except RuntimeError as err:  # DVC could not read the pipeline: its own message, no traceback
        sys.exit(f"ganlab.repro: {err}")


if __name__ == "__main__":
    main()
