"""The one type of error a user can cause (a bad setting, a missing or malformed file, a genotype
that does not fit). Commands print it as one line and exit with status 2; any other exception is
a bug and keeps its traceback."""
from __future__ import annotations


class UserError(ValueError):
    """Something the user can fix: the message says what, in one sentence."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""
