"""The scripts under tools/ as modules, for the tests that call their functions."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))   # as when a script runs: one tool imports another


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = sys.modules[name] = importlib.util.module_from_spec(spec)   # a dataclass needs its module there
    spec.loader.exec_module(module)
    return module
