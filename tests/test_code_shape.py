"""The house rules that keep src/ganlab changeable in one room: the layering whiteboard and short functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ganlab"
MAX_LINES = 60
WHY = "# long:"  # the comment a longer function carries, right above its `def`, saying why it cannot be split

# layer -> the ganlab modules (prefixes) it must never import, at any depth (see README, "Layout")
FORBIDDEN = {
    "config": ("nets", "losses", "train", "modules", "recipe", "samplers", "metrics", "tracking"),
    "schema": ("config", "nets", "losses", "train", "modules"),
    "nets": ("train", "modules", "tracking", "losses", "recipe", "metrics", "data"),
    "losses": ("nets", "train", "modules", "tracking"),
    "metrics": ("train", "modules", "nets", "tracking"),
    "data": ("nets", "train", "modules", "losses", "tracking"),
    "modules": ("train", "tracking"),
    "samplers": ("train", "tracking"),
    "report": ("train", "modules", "nets", "samplers"),
    "catalogue": ("train", "modules", "nets", "samplers", "tracking"),
}


def _modules() -> list[tuple[str, Path]]:
    return [(".".join(p.relative_to(SRC).with_suffix("").parts), p) for p in sorted(SRC.rglob("*.py"))]


def _imports(path: Path) -> set[str]:
    """Every ganlab module `path` imports, at module level or inside functions (without the `ganlab.` prefix)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ganlab":
            found |= {f"{node.module}.{a.name}".removeprefix("ganlab.") for a in node.names} | {node.module.removeprefix("ganlab.")}
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("ganlab.") for a in node.names if a.name.split(".")[0] == "ganlab"}
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_dependencies_point_down(layer):
    offenders = []
    for name, path in _modules():
        if name.split(".")[0] != layer:
            continue
        for imported in _imports(path):
            if any(imported == f or imported.startswith(f + ".") for f in FORBIDDEN[layer]):
                offenders.append(f"{name} -> {imported}")
    assert not offenders, f"{layer} imports a higher layer: {offenders}"


def test_the_forbidden_table_can_fail():
    # the other side: the training loop does import networks and losses, which the table forbids config
    assert {"losses", "modules"} <= {m.split(".")[0] for m in _imports(SRC / "train.py")}


def _long_functions(path: Path, root: Path = SRC) -> list[str]:
    lines = path.read_text().splitlines()
    long = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if length > MAX_LINES and not lines[first - 2].strip().startswith(WHY):
                long.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return long


def test_no_function_is_longer_than_60_lines_without_saying_why():
    long = [f for _, path in _modules() for f in _long_functions(path)]
    assert not long, f"split these, or say why they cannot be split in a `{WHY}` comment above the def: {long}"


def test_the_length_rule_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    plain = tmp_path / "plain.py"
    plain.write_text(f"def f():\n{body}\n")
    explained = tmp_path / "explained.py"
    explained.write_text(f"{WHY} one numbered recipe from the paper, step by step\ndef f():\n{body}\n")
    assert _long_functions(plain, tmp_path) == ["plain.py:1 f (61 lines)"]
    assert _long_functions(explained, tmp_path) == []
