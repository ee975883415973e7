"""Every stage declares the src/ganlab modules it imports, so DVC reruns it exactly when its code changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Import a stage script without running it, resolve the registries' lazily imported modules, and list
# every ganlab source file loaded.
_PROBE = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("stage_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if "ganlab.nets.registry" in sys.modules:
    for role in sys.modules["ganlab.nets.registry"].ROLES:
        sys.modules["ganlab.nets.registry"].architectures(role)
files = sorted({m.__file__ for name, m in list(sys.modules.items())
                if name.split(".")[0] == "ganlab" and getattr(m, "__file__", None)})
print(json.dumps(files))
"""


def _stages() -> dict[str, dict]:
    with open(ROOT / "dvc.yaml") as f:
        stages = yaml.safe_load(f)["stages"]
    return {name: spec.get("do", spec) for name, spec in stages.items()}


def _script(spec: dict) -> Path:
    return ROOT / next(part for part in spec["cmd"].split() if part.startswith("stages/"))


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_deps_cover_its_imports(stage):
    spec = _stages()[stage]
    script = _script(spec)
    deps = [d if isinstance(d, str) else next(iter(d)) for d in spec["deps"]]
    assert str(script.relative_to(ROOT)) in deps, f"{stage}: its own script is not a dependency"
    out = subprocess.run([sys.executable, "-c", _PROBE, str(script)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    imported = [Path(f).resolve() for f in json.loads(out.stdout)]
    src = (ROOT / "src").resolve()
    assert imported, f"{stage}: no ganlab module imported?"

    def covered(path: Path) -> bool:
        return any(path == (ROOT / d).resolve() or (ROOT / d).resolve() in path.parents for d in deps)

    missing = [str(p.relative_to(src.parent)) for p in imported if p.is_relative_to(src) and not covered(p)]
    # package __init__ files carry no logic; everything else must be declared
    missing = [m for m in missing if not m.endswith("__init__.py")]
    assert not missing, f"{stage} imports modules it does not declare in dvc.yaml deps: {missing}"
