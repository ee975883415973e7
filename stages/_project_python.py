"""Every stage runs with the project's Python, or stops with one line saying how to get it.

DVC runs a stage's `python stages/<name>.py ...` with the first `python` on PATH. Called as `.venv/bin/dvc repro`
(or `dvc exp run`) without activating the venv, that is another Python, one without ganlab, and the stage would
die in a traceback. Each stage imports this module before anything else: when `ganlab` cannot be imported, it
re-executes the stage with the project's `.venv/bin/python` (the repository's own; in a queued experiment's
temporary copy under `.dvc/tmp/exps/`, the main repository's), and when there is none it exits with one line
saying to activate the environment. Standard library only: it runs before the project's packages can be found.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

_REEXEC = "GANLAB_REEXECUTED"  # set before re-executing, so that a venv without ganlab cannot loop


def _venv_python() -> Path | None:
    """The nearest `.venv/bin/python` from the repository up (the stage script lives in <repo>/stages/)."""
    for folder in Path(sys.argv[0]).resolve().parents[1:]:
        candidate = folder / ".venv" / "bin" / "python"
        if candidate.exists():
            return candidate
    return None


def ensure_project_python() -> None:
    if importlib.util.find_spec("ganlab") is not None:
        return
    python = _venv_python()
    if python is not None and os.environ.get(_REEXEC) != "1":
        os.environ[_REEXEC] = "1"
        os.execv(python, [str(python), *sys.argv])
    sys.exit(f"{sys.argv[0]}: the ganlab package is not installed in {sys.executable}; activate the project's "
             "environment (`make venv`, then `source .venv/bin/activate`) and run DVC again")


ensure_project_python()
