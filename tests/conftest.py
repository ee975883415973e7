"""Shared fixtures: the repository root and the project's params."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(ROOT / "stages"))  # tests that import a stage script find its `import _project_python`


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def params() -> dict:
    with open(ROOT / "params.yaml") as f:
        return yaml.safe_load(f)


@pytest.fixture
def uri(tmp_path, monkeypatch) -> str:
    """A fresh MLflow SQLite store for the test (MLFLOW_TRACKING_URI), run from tmp_path."""
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri
