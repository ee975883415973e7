"""Stage commands find the project's Python: `.venv/bin/dvc repro` without an activated venv runs each stage's
`python stages/<name>.py` with whatever `python` is on PATH; `stages/_project_python.py` re-executes the stage with
the project's `.venv/bin/python`, or stops with one line saying to activate it (issue 16)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The interpreter the venv was made from: the same Python, without the project's packages.
BARE_PYTHON = getattr(sys, "_base_executable", None)


def _bare_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "GANLAB_REEXECUTED")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != Path(sys.executable).parent)
    return env


@pytest.fixture
def bare_python() -> str:
    if not BARE_PYTHON or Path(BARE_PYTHON) == Path(sys.executable):
        pytest.skip("the tests do not run in a virtual environment: no Python without the project to try")
    probe = subprocess.run([BARE_PYTHON, "-c", "import ganlab"], capture_output=True, env=_bare_env())
    if probe.returncode == 0:
        pytest.skip(f"{BARE_PYTHON} has ganlab installed itself")
    return BARE_PYTHON


def test_every_stage_imports_it_before_anything_else():
    for script in sorted((ROOT / "stages").glob("[!_]*.py")):
        body = ast.parse(script.read_text()).body
        imports = [node for node in body if isinstance(node, (ast.Import, ast.ImportFrom))]
        first = imports[0]
        assert isinstance(first, ast.Import) and first.names[0].name == "_project_python", script.name


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="no .venv in this checkout (make venv)")
def test_a_stage_called_with_another_python_reruns_itself_with_the_projects(bare_python):
    proc = subprocess.run([bare_python, "stages/validate.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                          env=_bare_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "usage: validate.py" in proc.stdout


def test_without_a_project_python_it_stops_with_one_line(bare_python, tmp_path):
    shutil.copytree(ROOT / "stages", tmp_path / "stages")  # a checkout without .venv
    proc = subprocess.run([bare_python, "stages/validate.py", "--help"], cwd=tmp_path, capture_output=True, text=True,
                          env=_bare_env(), timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"stages/validate.py: the ganlab package is not installed in {bare_python}; activate the project's environment "
        "(`make venv`, then `source .venv/bin/activate`) and run DVC again"
    ]
    assert proc.stdout == ""
