"""Writing the files a user keeps: atomically, with the user's umask, and readable back with a named error.

Every temporary this module makes is a hidden sibling of what it becomes:
``.NAME.XXXXXXXX.tmp`` (a file, a directory, or ``.publish.XXXXXXXX.tmp`` of
:func:`publish_files`), and ``.NAME.old-PID`` while :func:`atomic_dir` swaps a
directory. A process killed with ``kill -9`` leaves them behind;
:func:`leftovers` finds them, so that the next run on the same output removes
them (:mod:`paddle_dynafast.outputs`).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, List, Optional

from .errors import ArtifactError

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?:[a-z0-9_]{8}\.tmp|old-\d+)$")
"""``.NAME.XXXXXXXX.tmp`` (``tempfile``'s eight random characters) and ``.NAME.old-PID``."""


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


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data``; readers see the old file or the new one, never half of one. A full disk is an ``OSError``
    naming ``path`` (the temporary is removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, OSError) and error.filename is None:
            raise OSError(error.errno, f"{error.strerror} while writing {path}") from error
        raise


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8), atomically (:func:`write_bytes`)."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented strict JSON (NaN and infinity are refused), atomically (:func:`write_text`)."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; a missing file is a ``FileNotFoundError``, a damaged one an :class:`ArtifactError`,
    each naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path} is not valid JSON (truncated or edited?): {error}") from error


def written_with(path: str | Path, config: dict) -> bool:
    """True if the JSON file ``path`` exists and was written with ``config`` (its ``config`` entry)."""
    return Path(path).is_file() and read_json(path).get("config") == config


def leftovers(directory: str | Path, name: Optional[str] = None) -> List[Path]:
    """The temporaries of this module's writers in ``directory`` (of ``name`` only, if given)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in sorted(directory.iterdir()):
        match = _TEMPORARY.match(entry.name)
        if match and (name is None or match.group("name") == name):
            found.append(entry)
    return found


def leftovers_name(path: Path) -> str:
    """The name of what a temporary of :func:`leftovers` was to become (``publish`` for :func:`publish_files`)."""
    match = _TEMPORARY.match(Path(path).name)
    return match.group("name") if match else ""


def remove(path: Path) -> None:
    """Remove a file or a directory tree, whichever ``path`` is (nothing if it is gone)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces ``path`` only if the block succeeds.

    The directory gets the permissions of ``mkdir`` under the user's umask (not
    ``mkdtemp``'s 0700). On success the old ``path`` (if any) is swapped out and
    removed; on error the temporary directory is removed and ``path`` is left
    exactly as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~umask())
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def publish_files(directory: str | Path) -> Iterator[Path]:
    """Yield a temporary directory whose files are moved into ``directory`` if the block succeeds.

    Each file replaces its namesake atomically (``os.replace``); on error nothing
    in ``directory`` changes.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory, prefix=".publish.", suffix=".tmp"))
    try:
        yield tmp
        for path in sorted(tmp.iterdir()):
            if path.is_dir():
                raise IsADirectoryError(f"publish_files moves files only, not the directory {path.name}")
            os.replace(path, directory / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
