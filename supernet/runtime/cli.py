"""What every command's `main()` shares: logging set-up and one-line user errors.

    @command
    def main(argv=None):
        cfg, out = load_config(TrainConfig, argv)
        ...

Errors a user can cause are raised as `supernet.errors.UserError` (ConfigError, DatasetError,
GenotypeError, CheckpointError, ...); a command prints them as `error: <message>` on stderr
and exits with status 2, without a traceback. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import functools
import logging
import sys

from ..errors import UserError
from .distributed import is_main_process
from .lock import release_run_dirs


def setup_logging():
    """INFO on rank 0 (or a single process), WARNING on the other ranks of a torchrun job."""
    level = logging.INFO if is_main_process() else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")


def one_line(error: UserError) -> str:
    """A user error's message; one that a DataLoader worker raised comes back wrapped around the worker's
    traceback, whose last line is the message."""
    text = str(error)
    if "\nOriginal Traceback" in text:
        text = text.rstrip().splitlines()[-1].split(": ", 1)[-1]
    return text


def command(main):
    """Decorate a console-script entry point: set up logging, turn user errors into
    `error: ...` on stderr with exit status 2, and Ctrl-C into exit status 130; the run
    directories the command held are free again when it returns."""

    @functools.wraps(main)
    def wrapper(argv=None):
        setup_logging()
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {one_line(e)}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        finally:
            release_run_dirs()

    return wrapper
