"""Imports point one way: search -> supernet, retrain -> supernet, pipeline -> all three; nothing imports tools
or pipeline; inside supernet/, the model core imports nothing of the run machinery (supernet/runtime/)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"supernet": {"search", "retrain", "pipeline", "tools"}, "search": {"retrain", "pipeline", "tools"},
             "retrain": {"search", "pipeline", "tools"}, "pipeline": {"tools"}}
COMMANDS = {"train.py"}   # supernet-train: a command, beside the model core it trains


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def imported_modules(path: Path, package: str) -> set[str]:
    """Every module `path` imports, relative imports resolved against its package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names |= {module} | {f"{module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_one_way_imports(package):
    files = sorted((ROOT / package).rglob("*.py"))
    if not files:
        pytest.skip(f"no sources under {package}/ yet")
    for path in files:
        bad = imported_packages(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_model_core_imports_nothing_of_the_run_machinery():
    core = [p for p in sorted((ROOT / "supernet").glob("*.py")) if p.name not in COMMANDS]
    assert {"model.py", "network.py", "space.py"} <= {p.name for p in core}
    for path in core:
        bad = {m for m in imported_modules(path, "supernet")
               if m.startswith(("supernet.runtime", "supernet.train"))}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_check_sees_relative_imports_of_the_runtime(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text("from .runtime.loop import TrainLoop\nfrom . import runtime\n")
    assert {"supernet.runtime.loop", "supernet.runtime"} <= imported_modules(path, "supernet")


def test_no_module_shadows_the_standard_library():
    import sys
    for path in ROOT.glob("*/*.py"):
        if path.parent.name in FORBIDDEN:
            assert path.stem not in sys.stdlib_module_names, f"{path.relative_to(ROOT)} shadows the standard library"
