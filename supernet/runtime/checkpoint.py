"""Atomic checkpoints that survive a crash at any moment, and the RNG states they carry.

    save_checkpoint(run_dir, {"model": net.state_dict(), "step": 10, "rng": rng_state(), ...})
    state = load_checkpoint(run_dir)       # None when the run has none yet

A checkpoint holds only tensors and primitive containers, so it loads with
`torch.load(weights_only=True)`. The file is written to a temporary file in the
same folder, fsynced and renamed over `checkpoint.pt`; the one it replaces is
kept as `checkpoint.prev.pt`, unless it is damaged (a run that resumed from the
previous one keeps that one). Each file is sealed with the SHA-256 of its bytes, kept in
the zip's archive comment; loading checks the seal and the zip records' CRCs (torch.load
alone does not notice flipped bytes, and a CRC misses those between records) and falls
back to the previous checkpoint when the newest is truncated, corrupt or holds more than
tensors.
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import MissingFileError, UserError
from ..model import SuperNet, SuperNetSpec

log = logging.getLogger(__name__)

LATEST, PREVIOUS = "checkpoint.pt", "checkpoint.prev.pt"
SUPERNET_FILE = "supernet.json"   # the summary a finished supernet-train run writes


class CheckpointError(UserError):
    """No readable checkpoint where there should be one."""


def _fsync_dir(path: Path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(run_dir, state: dict) -> Path:
    """Write `state` atomically as run_dir/checkpoint.pt, keeping the one before as checkpoint.prev.pt."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    latest, tmp = run_dir / LATEST, run_dir / (LATEST + ".tmp")
    with open(tmp, "w+b") as f:
        torch.save(state, f)
        _seal(f)
        f.flush()
        os.fsync(f.fileno())
    if latest.exists() and _intact(latest):
        os.replace(latest, run_dir / PREVIOUS)
    os.replace(tmp, latest)
    _fsync_dir(run_dir)
    return latest


SEAL = b"sha256:"
_EOCD, _EOCD_SIZE = b"PK\x05\x06", 22   # the zip's end-of-central-directory record, without a comment


def _sha256(f, size: int) -> str:
    """SHA-256 of the first `size` bytes of the open file `f`."""
    digest, left = hashlib.sha256(), size
    f.seek(0)
    while left:
        chunk = f.read(min(left, 1 << 20))
        digest.update(chunk)
        left -= len(chunk)
    return digest.hexdigest()


def _seal(f):
    """Append, as the zip archive's comment, the SHA-256 of every byte before it."""
    f.seek(-_EOCD_SIZE, os.SEEK_END)
    if f.read(_EOCD_SIZE)[:4] != _EOCD:
        raise RuntimeError("torch.save wrote a zip whose end record is not the last 22 bytes")
    f.seek(-2, os.SEEK_END)
    f.write(struct.pack("<H", len(SEAL) + 64))   # the comment length
    f.flush()
    size = f.seek(0, os.SEEK_END)
    seal = SEAL + _sha256(f, size).encode()
    f.seek(0, os.SEEK_END)
    f.write(seal)


def _verify(path: Path):
    with zipfile.ZipFile(path) as z:
        comment, bad = z.comment, z.testzip()
    if bad is not None:
        raise CheckpointError(f"record {bad} fails its CRC check")
    if not comment.startswith(SEAL):
        raise CheckpointError("it carries no seal (SHA-256) of its contents")
    with open(path, "rb") as f:
        if _sha256(f, path.stat().st_size - len(comment)) != comment[len(SEAL):].decode(errors="replace"):
            raise CheckpointError("its bytes differ from those it was sealed with (SHA-256)")


def _intact(path: Path) -> bool:
    try:
        _verify(path)
    except Exception:  # noqa: BLE001 - truncated or corrupt, whichever way it shows
        return False
    return True


def _read(path: Path, map_location) -> dict:
    _verify(path)
    return torch.load(path, map_location=map_location, weights_only=True)


def _reason(e: Exception) -> str:
    """Why a checkpoint is unreadable, in one line (torch's weights_only refusal is a page of advice)."""
    text = str(e)
    refused = re.search(r"WeightsUnpickler error: (.*?)(?:\. |\.?$)", text, re.MULTILINE)
    if refused:
        return f"it holds more than tensors and plain containers ({refused[1]}), refused by weights_only=True"
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def load_checkpoint(run_dir, map_location="cpu") -> dict | None:
    """The newest readable checkpoint of run_dir (falling back to checkpoint.prev.pt with a
    warning), None if there is none; CheckpointError if every one there is unreadable."""
    run_dir = Path(run_dir)
    paths = [p for p in (run_dir / LATEST, run_dir / PREVIOUS) if p.exists()]
    failures = []
    for path in paths:
        try:
            state = _read(path, map_location)
        except Exception as e:  # noqa: BLE001 - truncated, corrupt or foreign: any way a file can be unreadable
            failures.append(f"{path.name}: {_reason(e)}")
            log.warning("checkpoint %s is unreadable (%s)", path, _reason(e))
            continue
        if failures:
            log.warning("resuming from the previous checkpoint %s", path)
        return state
    if failures:
        raise CheckpointError(f"no readable checkpoint in {run_dir} ({'; '.join(failures)}); "
                              "delete the run directory to start over")
    return None


def check_same_network(saved: dict, current: dict, run_dir, what: str):
    """Refuse, in one line and before any weights load, a checkpoint whose network description
    `saved` differs from the run's `current` one (a checkpoint copied from another run)."""
    changed = [k if len(repr(v)) > 40 else f"{k}: {saved.get(k)!r} -> {v!r}"
               for k, v in current.items() if saved.get(k) != v]
    if changed:
        raise CheckpointError(f"the checkpoint in {run_dir} is of another {what} ({'; '.join(changed)}); "
                              "re-run with its settings to resume, or pick a new --out")


def seed_all(seed: int):
    """Seed the global RNGs (torch, numpy, Python random), as a fresh run starts."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def rng_state() -> dict:
    """The global RNG states (torch CPU and CUDA, numpy, Python random) as tensors."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": torch.from_numpy(keys.astype(np.int64)),
        "numpy_extra": torch.tensor([pos, has_gauss], dtype=torch.int64),
        "numpy_gauss": torch.tensor(gauss, dtype=torch.float64),
        "python": torch.tensor(py_state, dtype=torch.int64),
        "python_extra": [py_version, py_gauss],
    }


def set_rng_state(state: dict):
    """Restore what `rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    pos, has_gauss = state["numpy_extra"].tolist()
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), pos, has_gauss,
                         state["numpy_gauss"].item()))
    py_version, py_gauss = state["python_extra"]
    random.setstate((py_version, tuple(state["python"].tolist()), py_gauss))


def load_supernet(run_dir, map_location="cpu", untrained: bool = False) -> SuperNet:
    """The supernet of a `supernet-train` run directory, with its latest checkpointed weights; with
    `untrained`, the same supernet at initialisation (built from seed 0): the control that shows what
    its training adds."""
    state = load_checkpoint(run_dir, map_location)
    if state is None:
        raise MissingFileError(f"{run_dir} holds no supernet checkpoint; train one with supernet-train --out {run_dir}")
    if untrained:
        torch.manual_seed(0)
    net = SuperNetSpec(**state["network"]).build()
    if not untrained:
        net.load_state_dict(state["model"])
    return net


def supernet_dirs(run_dir, settings: dict) -> list[Path]:
    """Where the supernets of a `supernet-train` run directory with config `settings` lie: the run's
    own, or run<k> for each of `runs` > 1 independent runs (supernet.train.IndependentRuns)."""
    runs = settings.get("runs", 1)
    return [Path(run_dir) / f"run{k}" for k in range(runs)] if runs > 1 else [Path(run_dir)]


def load_supernets(run_dir, settings: dict, map_location="cpu", untrained: bool = False) -> list[SuperNet]:
    """The supernets whose scores a genotype's score averages: those of supernet_dirs, each as
    load_supernet loads it; untrained, the one supernet at initialisation (seed 0)."""
    where = supernet_dirs(run_dir, settings)
    if untrained:
        return [load_supernet(where[0], map_location, untrained=True)]
    trained = sum((w / SUPERNET_FILE).exists() for w in where)
    if len(where) > 1 and trained < len(where):
        raise MissingFileError(f"{run_dir} has finished {trained} of its {len(where)} supernets; re-run its "
                               "supernet-train command to finish the others")
    return [load_supernet(w, map_location) for w in where]
