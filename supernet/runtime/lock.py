"""One job per run directory: an OS file lock (flock) on the directory itself, held by the process
(rank 0 under torchrun) from the moment its command claims the directory until the command returns.

The kernel drops a flock when its process dies, however it dies: a killed run leaves no stale
lock, and re-running it resumes at once. Nothing is written for the lock, so the run directory
holds only what the run writes. A second command on a directory in use stops before it changes
anything, with one line that names the process holding it (read from /proc/locks).
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import UserError

_held: dict[Path, int] = {}   # run directory -> the open descriptor that holds its lock


class RunDirInUseError(UserError):
    """Another process works in the run directory."""


def _holder(fd: int) -> str:
    """The pid of the process holding a flock on the file of `fd`, as /proc/locks lists it."""
    st = os.fstat(fd)
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another process"
    pids = [f[4] for f in (line.split() for line in lines) if len(f) > 5 and f[1] == "FLOCK" and f[5] == key]
    return pids[0] if pids else "another process"


def hold_run_dir(out) -> None:
    """Lock `out` for this process (created if missing); a no-op if this process holds it already."""
    given, out = out, Path(out).resolve()
    if out in _held:
        return
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunDirInUseError(f"run directory {given} is in use by process {holder}") from None
    _held[out] = fd


def release_run_dirs() -> None:
    """Unlock every run directory this process holds (the end of a command)."""
    while _held:
        os.close(_held.popitem()[1])
