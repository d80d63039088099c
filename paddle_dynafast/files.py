"""Reading the files of a model or export directory without being led outside it.

The rule: every file paddle_dynafast reads from a model directory (``--model`` of every command: a stage directory,
a pretrained one, an export) is a regular file inside that directory. A symbolic link (even one pointing inside), a
pipe or a device under the name is refused with an error naming it, checked with ``lstat``; the files we read
ourselves are also opened with ``O_NOFOLLOW`` and checked again on the open descriptor (``fstat``), so a link put in
place after the check is not followed either. A library that opens a file by its path (Paddle Inference, ONNX Runtime,
the tokenizer) is handed it only after :func:`check_regular`.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import ArtifactError, MissingFileError

FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
"""How a file is opened: never through a link, and without waiting on a pipe (``O_NONBLOCK``, for the open only)."""


def _refusal(path: Path, mode: int) -> ArtifactError:
    if stat.S_ISLNK(mode):
        try:
            target = f" (to {os.readlink(path)})"
        except OSError:
            target = ""
        return ArtifactError(f"{path} is a symbolic link{target}: every file of {path.parent} must be a regular file "
                             "inside it; copy the file in place of the link")
    kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a pipe, socket or device)"
    return ArtifactError(f"{path} is {kind}: every file of {path.parent} must be a regular file inside it")


def check_regular(path: str | Path) -> Path:
    """``path`` itself (not what a link points at) is a regular file; a missing file is a
    :class:`MissingFileError`, anything else an :class:`ArtifactError`, each naming it."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise MissingFileError(f"{path} is missing") from None
    if not stat.S_ISREG(mode):
        raise _refusal(path, mode)
    return path


def is_regular(path: str | Path) -> bool:
    """``path`` is a regular file, not a link to one (``os.path.isfile`` follows links)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def exists(path: str | Path) -> bool:
    """Something is at ``path``: a file, a directory, or a link, even a dangling one."""
    return os.path.lexists(path)


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for reading in binary, without following a link, refused unless it is a regular file."""
    path = Path(path)
    try:
        fd = os.open(path, FLAGS)
    except FileNotFoundError:
        raise MissingFileError(f"{path} is missing") from None
    except OSError as error:  # ELOOP: a link; anything else (permissions) is said as it is
        if os.path.islink(path):
            raise _refusal(path, os.lstat(path).st_mode) from None
        raise OSError(error.errno, f"cannot read {path}: {error.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _refusal(path, mode)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bytes(path: str | Path) -> bytes:
    """The bytes of the regular file ``path`` (:func:`open_regular`)."""
    with open_regular(path) as f:
        return f.read()


def read_text(path: str | Path) -> str:
    """The text of the regular file ``path``, UTF-8; bytes that are not are an :class:`ArtifactError` naming the
    file and the offset (a binary file, or another encoding)."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ArtifactError(f"{path} is not UTF-8 text (byte {error.start}: {data[error.start:error.start + 1]!r}); "
                            "is it damaged, or a binary file?") from None
