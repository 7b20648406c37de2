"""The README's Python API block runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_python_api_block_runs():
    section = README.read_text().split("## Python API", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)[1]
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)   # noqa: S102 - the README's own code
    assert namespace["logits"].shape == (8, 10) and 0 <= namespace["reward"] <= 1
