"""Writing the files a user keeps: atomically, with the configuration that produced them."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def write_text(path: str | Path, text: str) -> None:
    """Write ``text``; readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (:func:`write_text`)."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def written_with(path: str | Path, config: dict) -> bool:
    """True if the JSON file ``path`` exists and was written with ``config`` (its ``config`` entry)."""
    return Path(path).is_file() and read_json(path).get("config") == config


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces ``path`` only if the block succeeds.

    On success the old ``path`` (if any) is swapped out and removed; on error the
    temporary directory is removed and ``path`` is left exactly as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
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
