"""Where things live: the repository root, also from inside a queued DVC experiment.

`dvc exp run --queue` / `--temp` executes each experiment in a temporary copy of the repository at
`<repo>/.dvc/tmp/exps/<run dir>/...`, and sets `DVC_ROOT` to that copy. Files that must outlive the
copy (the MLflow database, hand-placed downloads) belong to the *main* repository, so `main_repo_root`
walks back out of `.dvc/tmp/exps`.
"""

from __future__ import annotations

import os
from pathlib import Path

_EXPS_TMP = (".dvc", "tmp", "exps")
CHECKPOINT = "checkpoint.pt"  # a training seed's checkpoint inside its seed_path folder


def repo_root() -> Path:
    """The repository this process runs in: `DVC_ROOT` when DVC runs the stage, else the nearest
    ancestor of the working directory that holds `dvc.yaml`, else the working directory."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "dvc.yaml").exists():
            return folder
    return cwd


def main_repo_root(root: Path | None = None) -> Path:
    """The user's repository, also when `root` is a temporary experiment copy inside its `.dvc/tmp/exps`."""
    root = (root or repo_root()).resolve()
    parts = root.parts
    for i in range(len(parts) - len(_EXPS_TMP)):
        if parts[i : i + len(_EXPS_TMP)] == _EXPS_TMP:
            return Path(*parts[:i])
    return root


def seed_path(folder: str | Path, seed: int, suffix: str = "") -> Path:
    """`<folder>/seed-<seed><suffix>`: one training seed's file (suffix ".npz", ".json") or folder (no suffix)
    inside a stage's per-experiment output folder (`seeds` in params.yaml)."""
    return Path(folder) / f"seed-{seed}{suffix}"
