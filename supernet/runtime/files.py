"""Files a run writes whole: written beside their target, then renamed over it, so a reader
(or a run killed mid-write) never sees half a file."""
from __future__ import annotations

import json
import os
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data, indent: int = 1) -> None:
    write_atomic(path, json.dumps(data, indent=indent) + "\n")
