"""Data flows one way: stage packages never import each other, and the core imports no heavy library at module level."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STAGES = ("harvester", "indexer", "searchapi")
HEAVY = ("scrapy", "torch", "sentence_transformers", "faiss", "fastapi", "trafilatura", "uvicorn")
# The CLI and the demo orchestrate the stages, importing them inside functions only.
ORCHESTRATORS = {"ssehub/cli.py", "ssehub/demo/run.py"}


def module_level_imports(path: Path) -> set[str]:
    """Top-level package names imported outside any function body."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        for sub in ast.walk(node) if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) else []:
            if isinstance(sub, ast.Import):
                names.update(a.name.split(".")[0] for a in sub.names)
            elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                names.add(sub.module.split(".")[0])
    return names


def all_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for sub in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(sub, ast.Import):
            names.update(a.name.split(".")[0] for a in sub.names)
        elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
            names.add(sub.module.split(".")[0])
    return names


@pytest.mark.parametrize("stage", STAGES)
def test_stages_do_not_import_each_other(stage: str) -> None:
    for path in (REPO / stage).rglob("*.py"):
        others = all_imports(path) & (set(STAGES) - {stage})
        assert not others, f"{path.relative_to(REPO)} imports {others}"


def test_core_imports_nothing_heavy_at_module_level() -> None:
    for path in (REPO / "ssehub").rglob("*.py"):
        rel = str(path.relative_to(REPO))
        found = module_level_imports(path) & set(HEAVY)
        assert not found, f"{rel} imports {found} at module level"
        if rel not in ORCHESTRATORS:
            assert not all_imports(path) & set(STAGES), f"{rel} imports a stage package"
