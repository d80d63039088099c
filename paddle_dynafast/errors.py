"""The errors a user can cause, apart from the ones the code itself can.

Everything that is wrong with what the user gave (a flag, a data file, a model
or an exported directory) raises a :class:`UserError`: the command line prints
its message as one line and exits with 2. Anything else that escapes is a bug
in paddle_dynafast or below it, and the command line shows its traceback.
Every class is also a ``ValueError`` (or ``FileNotFoundError``), so callers that
caught those before still do.
"""
from __future__ import annotations


class UserError(ValueError):
    """A problem with what the user gave; the message names it (the value, the file and line, the flag)."""


class ConfigError(UserError):
    """A setting out of range or a bad combination of settings."""


class DataError(UserError):
    """Malformed or inconsistent input data; the message names the file and line."""


class CheckpointError(UserError):
    """A weight file that does not fit the model; the message names the key."""


class ArtifactError(UserError):
    """A stage or export directory that is incomplete, altered or not ours; the message names the file."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or directory the user pointed at does not exist or lacks a file it needs."""


class UntrustedFileError(CheckpointError):
    """A pickle file (``.pdparams``, ``.pdopt``, ``.pkl``) that would be loaded without ``trust_pickle``: unpickling
    runs whatever code the file carries, so it is only read when the user says they trust it."""


class OutputBusyError(UserError):
    """Another process holds the output directory's lock; the message names its PID."""


class TrainingError(UserError):
    """Training cannot go on (a non-finite loss); the message names the step."""


def summary(error: BaseException) -> str:
    """The line of a (third-party) error's message that says what went wrong: the first that names an error
    (Paddle puts ``In user code:`` and a stack first), else the first non-empty one."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return next((line for line in lines if "Error" in line), lines[0] if lines else type(error).__name__)
