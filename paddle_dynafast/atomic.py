"""Writing the files a user keeps: atomically, with the user's umask, and readable back with a named error.

Every temporary this module makes is a hidden directory beside what it becomes, ``.NAME.XXXXXXXX.tmp``
(``.publish.XXXXXXXX.tmp`` for :func:`publish_files`), holding a marker file (:data:`MARKER`) that names the
temporary: a file is written inside one and renamed out of it, a directory is built inside one, and the directory it
replaces is moved into it before it is removed. A process killed with ``kill -9`` leaves them behind;
:func:`leftovers` finds them, so that the next run on the same output removes them (:mod:`paddle_dynafast.outputs`).
Only a directory holding its own marker is a leftover: a file or directory of the user's whose name looks like a
temporary is never touched.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, List, Optional

from . import files
from .errors import ArtifactError

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
"""``.NAME.XXXXXXXX.tmp`` (``tempfile``'s eight random characters)."""

MARKER = ".paddle-dynafast-temporary"
"""The file inside every temporary directory of this module; it holds :func:`_marker_text` of the directory."""


def _marker_text(temporary: Path) -> bytes:
    return f"paddle-dynafast temporary {temporary.name}\n".encode("utf-8")


def umask() -> int:
    """The process's umask, read without changing it (``/proc``), else by setting it and back."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_temporary(parent: str | Path, name: str) -> Path:
    """A new marked temporary directory ``.NAME.XXXXXXXX.tmp`` in ``parent`` (private to the user: 0700)."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=".tmp"))
    try:
        fd = os.open(tmp / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_marker_text(tmp))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def is_temporary(path: str | Path) -> bool:
    """``path`` is a temporary of this module: named like one, a directory (not a link to one), holding its marker."""
    path = Path(path)
    if not _TEMPORARY.match(path.name):
        return False
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        with files.open_regular(path / MARKER) as f:
            return f.read(512) == _marker_text(path)
    except (OSError, ArtifactError):
        return False


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
"""What a write says when the disk, the quota or the file-size limit is reached (without naming the file)."""


def _named(error: OSError, path: Path) -> OSError:
    """``error`` with ``path`` in its message when it is a full disk's (or quota's) and names no file."""
    if error.filename is None and error.errno in _FULL:
        return OSError(error.errno, f"{error.strerror} while writing {path}")
    return error


@contextlib.contextmanager
def atomic_file(path: str | Path, encoding: Optional[str] = None) -> Iterator[IO]:
    """Yield a file opened for writing (binary, or text in ``encoding``) that replaces ``path`` only if the block
    succeeds: readers see the old file or the new one, never half of one. It is written inside a marked temporary
    beside ``path`` and gets the permissions of the user's umask. A full disk is an ``OSError`` naming ``path``; on
    any error ``path`` is left as it was and the temporary is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = make_temporary(path.parent, path.name)
    try:
        written = holder / path.name
        fd = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)  # 0666 & ~umask
        with (os.fdopen(fd, "wb") if encoding is None else os.fdopen(fd, "w", encoding=encoding)) as f:
            yield f
        os.replace(written, path)
    except OSError as error:
        named = _named(error, path)
        if named is error:
            raise
        raise named from error
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` atomically (:func:`atomic_file`)."""
    with atomic_file(path) as f:
        f.write(data)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8), atomically (:func:`write_bytes`)."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented strict JSON (NaN and infinity are refused), atomically (:func:`write_text`)."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``, a regular file (a link is not followed: :mod:`paddle_dynafast.files`); a missing file is
    a ``FileNotFoundError``, a damaged one (or one nested too deeply to read) an :class:`ArtifactError`, each naming
    the file."""
    path = Path(path)
    with files.open_regular(path) as f:
        data = f.read()
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path} is not valid JSON (truncated or edited?): {error}") from None
    except RecursionError:
        raise ArtifactError(f"{path} is nested too deeply to be a file paddle-dynafast wrote") from None


def written_with(path: str | Path, config: dict) -> bool:
    """True if the JSON file ``path`` exists and was written with ``config`` (its ``config`` entry)."""
    return files.exists(path) and read_json(path).get("config") == config


def leftovers(directory: str | Path, name: Optional[str] = None) -> List[Path]:
    """The temporaries of this module's writers in ``directory`` (of ``name`` only, if given): only directories
    holding their marker (:func:`is_temporary`)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in sorted(directory.iterdir()):
        match = _TEMPORARY.match(entry.name)
        if match and (name is None or match.group("name") == name) and is_temporary(entry):
            found.append(entry)
    return found


def leftovers_name(path: Path) -> str:
    """The name of what a temporary of :func:`leftovers` was to become (``publish`` for :func:`publish_files`)."""
    match = _TEMPORARY.match(Path(path).name)
    return match.group("name") if match else ""


def remove(path: Path) -> None:
    """Remove a file or a directory tree, whichever ``path`` is (nothing if it is gone; a link, not its target)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a new directory, inside a marked temporary beside ``path``, that replaces ``path`` only if the block
    succeeds.

    The directory gets the permissions of ``mkdir`` under the user's umask. On
    success the old ``path`` (if any) is moved into the temporary, the new
    directory takes its place and the temporary is removed; on error the
    temporary is removed and ``path`` is left exactly as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = make_temporary(path.parent, path.name)
    new = holder / path.name
    try:
        new.mkdir()
        yield new
        if files.exists(path):
            os.replace(path, holder / f"{path.name}.old")
        os.replace(new, path)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


@contextlib.contextmanager
def publish_files(directory: str | Path) -> Iterator[Path]:
    """Yield a temporary directory whose files are moved into ``directory`` if the block succeeds.

    Each file replaces its namesake atomically (``os.replace``); on error nothing
    in ``directory`` changes.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = make_temporary(directory, "publish")
    try:
        yield tmp
        for path in sorted(tmp.iterdir()):
            if path.name == MARKER:
                continue
            if path.is_dir():
                raise IsADirectoryError(f"publish_files moves files only, not the directory {path.name}")
            os.replace(path, directory / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
