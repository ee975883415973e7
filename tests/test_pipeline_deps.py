"""Every stage declares exactly the src/ganlab modules it imports, so DVC reruns it exactly when its code changes.

A stage looping over experiments names its networks' module as `src/ganlab/nets/${item.nets}.py` (the family of
`ganlab.nets.registry.FAMILIES` that the experiment's `nets` names); it is checked once per family, importing that
family's architectures only."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

FAMILY_DEP = "${item.nets}"

# Import a stage script without running it, resolve the registry's lazily imported modules (of family argv[2], or
# of every family when it is "*"), and list every ganlab source file loaded.
_PROBE = r"""
import importlib.util, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[1]).parent))  # as `python stages/<name>.py` has it: stages/_project_python
spec = importlib.util.spec_from_file_location("stage_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if "ganlab.nets.registry" in sys.modules:
    for role in sys.modules["ganlab.nets.registry"].ROLES:
        sys.modules["ganlab.nets.registry"].architectures(role, None if sys.argv[2] == "*" else sys.argv[2])
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


def _families() -> list[str]:
    from ganlab.nets.registry import FAMILIES

    return sorted(FAMILIES)


def _cases() -> list[tuple[str, str]]:
    """(stage, family): each family for a stage with a per-family dependency, "*" (all) otherwise."""
    cases = []
    for name, spec in sorted(_stages().items()):
        per_family = any(FAMILY_DEP in (d if isinstance(d, str) else next(iter(d))) for d in spec["deps"])
        cases += [(name, f) for f in (_families() if per_family else ["*"])]
    return cases


def _lazy_imports(modules: list[Path]) -> set[Path]:
    """The ganlab modules that `modules` import inside functions (e.g. matplotlib-heavy plotting on demand)."""
    found = set()
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ganlab":
                for name in [node.module, *(f"{node.module}.{a.name}" for a in node.names)]:
                    base = ROOT / "src" / Path(*name.split("."))
                    found |= {p.resolve() for p in (base.with_suffix(".py"), base / "__init__.py") if p.exists()}
    return found


def _imported(script: Path, family: str) -> list[Path]:
    out = subprocess.run([sys.executable, "-c", _PROBE, str(script), family], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return [Path(f).resolve() for f in json.loads(out.stdout)]


@pytest.mark.parametrize("stage, family", _cases())
def test_stage_deps_are_exactly_its_imports(stage, family):
    spec = _stages()[stage]
    script = _script(spec)
    deps = [(d if isinstance(d, str) else next(iter(d))).replace(FAMILY_DEP, family) for d in spec["deps"]]
    assert str(script.relative_to(ROOT)) in deps, f"{stage}: its own script is not a dependency"
    assert "stages/_project_python.py" in deps, f"{stage}: imports stages/_project_python.py first, undeclared"
    src = (ROOT / "src").resolve()
    imported = [p for p in _imported(script, family) if p.is_relative_to(src)]
    assert imported, f"{stage}: no ganlab module imported?"

    def covered(path: Path) -> bool:
        return any(path == (ROOT / d).resolve() or (ROOT / d).resolve() in path.parents for d in deps)

    # package __init__ files carry no logic; everything else must be declared
    missing = [str(p.relative_to(src.parent)) for p in imported if not covered(p) and p.name != "__init__.py"]
    assert not missing, f"{stage} ({family}) imports modules it does not declare in dvc.yaml deps: {missing}"
    # ... and nothing more: a declared module (or folder) of src/ that the stage never imports (nor imports lazily,
    # inside a function of a module it loads) reruns it for nothing
    reachable = set(imported) | _lazy_imports(imported)
    declared = [(ROOT / d).resolve() for d in deps if d.startswith("src/")]
    files = [f for d in declared for f in ([d] if d.is_file() else sorted(d.rglob("*.py"))) if f.name != "__init__.py"]
    unused = [str(f.relative_to(src.parent)) for f in files if f not in reachable]
    assert not unused, f"{stage} ({family}) declares modules it does not import: {unused}"


def test_a_family_stage_imports_no_other_family():
    """The point of per-family deps: building a `mlp` experiment never loads the dcgan module, and vice versa."""
    script = _script(_stages()["train"])
    for family in _families():
        others = {(ROOT / "src/ganlab/nets" / f"{f}.py").resolve() for f in _families() if f != family}
        assert not others & set(_imported(script, family)), family
