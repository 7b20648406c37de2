"""What every command's `main()` shares: logging set-up and one-line user errors.

    @command
    def main(argv=None):
        cfg, out = load_config(TrainConfig, argv)
        ...

Errors a user can cause are raised as ValueError or OSError subclasses
(ConfigError, DatasetError, FileNotFoundError, ...); a command prints them as
`error: <message>` on stderr and exits with status 2, without a traceback.
"""
from __future__ import annotations

import functools
import logging
import os
import sys

USER_ERRORS = (ValueError, OSError)


def setup_logging():
    """INFO on rank 0 (or a single process), WARNING on the other ranks of a torchrun job."""
    level = logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")


def command(main):
    """Decorate a console-script entry point: set up logging, turn user errors into
    `error: ...` on stderr with exit status 2, and Ctrl-C into exit status 130."""

    @functools.wraps(main)
    def wrapper(argv=None):
        setup_logging()
        try:
            return main(argv)
        except USER_ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
