"""`python -m ganlab.repro`: a real DVC pipeline of tiny stages run in parallel, then nothing left for `dvc repro`.

The pipeline: first -> (left, right) -> last, each stage a Python one-liner that records when it ran and how many
threads it was given. With --jobs 2 `left` and `right` overlap; `last` waits for both; a second run starts nothing;
a failing stage stops what waits on it and leaves the rest recorded."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ganlab.repro import critical_path, downstream_closure, repro
from repo_copy import base_env

# Each stage writes {"start", "end", "threads"} to out/<name>.json; `left` and `right` sleep so that they overlap
# when run side by side; FAIL=<name> in the environment makes that stage exit 3.
STAGE = ("import json, os, sys, time; name = sys.argv[1]; t0 = time.time(); time.sleep(float(sys.argv[2])); "
         "os.environ.get('FAIL') == name and sys.exit(3); "
         "json.dump({'start': t0, 'end': time.time(), 'threads': os.environ.get('OMP_NUM_THREADS')}, "
         "open(f'out/{name}.json', 'w'))")


def _stage(name: str, seconds: float, deps: list[str]) -> dict:
    return {"cmd": f'python -c "{STAGE}" {name} {seconds}', "deps": deps, "outs": [f"out/{name}.json"]}


@pytest.fixture
def pipeline(tmp_path) -> tuple[Path, dict]:
    env = base_env()
    for name in ("FAIL", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
    stages = {
        "first": _stage("first", 0, ["in.txt"]),
        "left": _stage("left", 4, ["out/first.json"]),
        "right": _stage("right", 4, ["out/first.json"]),
        "last": _stage("last", 0, ["out/left.json", "out/right.json"]),
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (tmp_path / "in.txt").write_text("one\n")
    (tmp_path / "out").mkdir()
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    return tmp_path, env


def _record(root: Path, name: str) -> dict:
    return json.loads((root / "out" / f"{name}.json").read_text())


def _status(root: Path, env: dict) -> dict:
    proc = subprocess.run(["dvc", "status", "--json"], cwd=root, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_independent_stages_overlap_and_nothing_is_left(pipeline):
    root, env = pipeline
    log = io.StringIO()
    assert repro(root, jobs=2, env=env, out=log) == 0
    left, right, last = (_record(root, n) for n in ("left", "right", "last"))
    assert left["start"] < right["end"] and right["start"] < left["end"], log.getvalue()  # side by side
    assert last["start"] >= max(left["end"], right["end"])  # waits for both
    assert _record(root, "first")["end"] <= min(left["start"], right["start"])
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    assert {_record(root, n)["threads"] for n in ("first", "left", "right", "last")} == {threads}
    assert _status(root, env) == {}  # every stage's dvc.lock entry written
    # a second run finds nothing to do and starts nothing
    again = io.StringIO()
    assert repro(root, jobs=2, env=env, out=again) == 0
    assert again.getvalue() == "[repro] dvc status: nothing changed, nothing to run\n"
    assert _record(root, "left") == left


def test_one_job_is_plain_dvc_repro_one_stage_at_a_time(pipeline):
    root, env = pipeline
    assert repro(root, jobs=1, env=env, out=io.StringIO()) == 0
    left, right = _record(root, "left"), _record(root, "right")
    assert left["end"] <= right["start"] or right["end"] <= left["start"]  # no overlap
    assert left["threads"] is None  # DVC's own environment: torch picks its thread count itself
    assert _status(root, env) == {}


def test_only_a_changed_stage_and_what_depends_on_it_run(pipeline):
    root, env = pipeline
    assert repro(root, jobs=2, env=env, out=io.StringIO()) == 0
    before = {n: _record(root, n) for n in ("first", "left", "right", "last")}
    stages = yaml.safe_load((root / "dvc.yaml").read_text())
    stages["stages"]["right"]["cmd"] += " "  # a changed command: `right` reruns, and `last` after it
    (root / "dvc.yaml").write_text(yaml.safe_dump(stages, sort_keys=False))
    log = io.StringIO()
    assert repro(root, jobs=2, env=env, out=log) == 0
    assert "[repro] 2 stages to check" in log.getvalue()
    assert _record(root, "first") == before["first"] and _record(root, "left") == before["left"]
    assert _record(root, "right")["start"] > before["right"]["end"]
    assert _record(root, "last")["start"] > before["last"]["end"]


def test_a_failed_stage_stops_what_waits_on_it_and_keeps_the_rest(pipeline):
    root, env = pipeline
    log = io.StringIO()
    assert repro(root, jobs=2, env={**env, "FAIL": "right"}, out=log) == 1
    text = log.getvalue()
    assert "[repro] FAILED right (exit" in text and "stopped: right failed" in text
    assert "start last" not in text and not (root / "out" / "last.json").exists()
    assert (root / "out" / "left.json").exists()
    assert set(_status(root, env)) == {"right", "last"}  # `first` and `left` are recorded in dvc.lock
    assert repro(root, jobs=2, env=env, out=io.StringIO()) == 0  # fixed: the rest runs
    assert _status(root, env) == {}


def test_a_pipeline_dvc_cannot_read_is_reported_in_one_line(pipeline):
    root, env = pipeline
    (root / "dvc.yaml").write_text("stages:\n  first: {cmd: [unclosed\n")
    proc = subprocess.run([sys.executable, "-m", "ganlab.repro", "--jobs", "2"], cwd=root, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("ganlab.repro: dvc status failed") and "dvc.yaml" in proc.stderr, proc.stderr
    assert not (root / "out" / "first.json").exists()


def test_jobs_below_one_is_refused_by_name():
    proc = subprocess.run([sys.executable, "-m", "ganlab.repro", "--jobs", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--jobs must be at least 1, got 0" in proc.stderr


def test_downstream_closure_and_critical_path():
    graph = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}, "e": set()}
    assert downstream_closure(graph, {"b"}) == {"b", "d"}
    assert downstream_closure(graph, {"a"}) == {"a", "b", "c", "d"}
    assert downstream_closure(graph, set()) == set()
    work = {"a", "b", "c", "d"}
    length = critical_path(graph, work, {"a": 1.0, "b": 10.0, "c": 2.0, "d": 5.0})
    assert length == {"d": 5.0, "b": 15.0, "c": 7.0, "a": 16.0}  # b before c: its chain is longer
