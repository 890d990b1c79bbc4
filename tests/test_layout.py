"""labkit's layout by stage: every import points down the stages (or stays in one), never up."""

from __future__ import annotations

import ast
from pathlib import Path

import labkit

PACKAGE = Path(labkit.__file__).parent
# lowest first: a module may import its own stage and those before it (the shared basics at the top are first)
STAGES = ["", "data", "deploy", "models", "results", "methods", "course", "run"]


def stage(module: str) -> str:
    """The stage of a dotted labkit module name ("" for the shared basics at the package's top)."""
    if module == "labkit.__main__":  # `python -m labkit`: the command line's entry
        return "run"
    part = module.split(".")[1] if module.count(".") else ""
    return part if part in STAGES else ""


def imports(path: Path) -> set[str]:
    """The labkit modules a file imports (`from labkit import x` counts as labkit.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("labkit"):
            found |= {f"labkit.{a.name}" for a in node.names} if node.module == "labkit" else {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("labkit.")}
    return found


def test_no_module_imports_a_later_stage():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(("labkit", *path.relative_to(PACKAGE).with_suffix("").parts))
        for target in imports(path):
            if STAGES.index(stage(target)) > STAGES.index(stage(module)):
                upward.append(f"{module} ({stage(module) or 'top'}) imports {target}")
    assert upward == []


def test_every_stage_says_what_it_holds_and_may_import():
    for name in STAGES[1:]:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text())) or ""
        assert len(doc) > 100 and "import" in doc, name
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name not in ("templates", "__pycache__")) \
        == sorted(STAGES[1:])
