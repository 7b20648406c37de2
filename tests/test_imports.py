"""Imports point one way: search -> supernet, retrain -> supernet, pipeline -> all three; nothing imports tools
or pipeline."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"supernet": {"search", "retrain", "pipeline", "tools"}, "search": {"retrain", "pipeline", "tools"},
             "retrain": {"search", "pipeline", "tools"}, "pipeline": {"tools"}}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_one_way_imports(package):
    files = sorted((ROOT / package).rglob("*.py"))
    if not files:
        pytest.skip(f"no sources under {package}/ yet")
    for path in files:
        bad = imported_packages(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_no_module_shadows_the_standard_library():
    import sys
    for path in ROOT.glob("*/*.py"):
        if path.parent.name in FORBIDDEN:
            assert path.stem not in sys.stdlib_module_names, f"{path.relative_to(ROOT)} shadows the standard library"
