"""One guard for every command's output directory: whose it is, one writer at a time, no leftovers.

Every command that writes (the training stages, ``export``, ``evaluate``,
``calibrate``, ``bench``, ``pipeline``) claims its output with :func:`claim`
before any work, which

* refuses an output that is, or holds, one of the command's inputs
  (``export --model X --output X``);
* takes an exclusive lock, a ``flock`` on ``.NAME.lock`` beside the directory
  (beside, so that replacing the directory does not drop it): a second command
  on the same output is refused at once with the holder's PID (it does not
  wait: a command that hangs silently behind another is worse than one that
  says why it stopped). The kernel releases the lock when the holder exits,
  ``kill -9`` included. The lock file is never opened through a link;
* removes what an earlier run killed while writing left behind: the
  temporaries of :mod:`paddle_dynafast.atomic`, each a directory holding its
  marker; nothing else, whatever its name;
* refuses a directory the command did not write (it holds files but not the
  command's marker, such as ``export.json``), whatever the flags: nothing of
  the user's is deleted or overwritten;
* refuses to replace the command's own earlier output unless asked (``replace``:
  ``--overwrite``, or ``--restart`` for a training stage, whose earlier output
  is otherwise resumed).

``predict --output`` claims a file with :func:`claim_file`: the same guard for
one file, written atomically, never inside the model directory it reads.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Optional, Sequence, Tuple

from . import atomic
from .errors import ArtifactError, ConfigError, OutputBusyError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Output:
    """What a command writes into its output directory and how an earlier output may be replaced."""

    command: str
    """The command's name, for messages."""
    marker: str
    """The JSON file that marks a directory as this command's output."""
    key: str
    """A key the marker holds; a marker without it is not ours."""
    value: Optional[str] = None
    """The value ``key`` must have (a stage directory's ``stage``), or None for any."""
    flag: str = "--overwrite"
    """What the user passes to replace an earlier output."""
    files: Optional[Tuple[str, ...]] = None
    """The files the command writes into the directory; None: the directory is the command's as a whole."""
    resumable: bool = False
    """An earlier output is continued rather than refused (a training stage)."""

    def owns(self, directory: Path) -> bool:
        """``directory`` holds this command's marker."""
        marker = directory / self.marker
        if not marker.is_file():
            return False
        raw = atomic.read_json(marker)
        return isinstance(raw, dict) and self.key in raw and (self.value is None or raw[self.key] == self.value)


EXPORT = Output("export", "export.json", "exit_loop")
EVALUATE = Output("evaluate", "evaluation.json", "points",
                  files=("evaluation.json", "evaluation.md", "evaluation.png", "layer_probs.npz"))
CALIBRATE = Output("calibrate", "calibration.json", "full_model",
                   files=("calibration.json", "calibration.md", "dev_layer_probs.npz", "test_layer_probs.npz"))
BENCH = Output("bench", "bench.json", "results", files=("bench.json", "bench.md"))
PIPELINE = Output("pipeline", "summary.json", "paths", files=("summary.json",), resumable=True)


def stage_output(name: str) -> Output:
    """A training stage's directory: ``stage.json`` names the stage; an earlier run is resumed, ``--restart``
    starts it over."""
    return Output(name, "stage.json", "stage", value=name, flag="--restart", resumable=True)


def check_not_input(output: Path, inputs: Sequence[Optional[str | Path]], command: str, whole: bool = True) -> None:
    """Refuse an output that is one of ``inputs`` or, for a command that replaces its directory as a whole
    (``whole``), holds one: writing it would destroy or change what the command reads."""
    target = Path(output).resolve()
    for source in inputs:
        if source is None:
            continue
        resolved = Path(source).resolve()
        if resolved == target or (whole and target in resolved.parents):
            raise ConfigError(f"--output {output} would write over the input {source} of {command}; "
                              "choose another --output")


def check_not_inside(output: Path, directories: Sequence[Optional[str | Path]], command: str) -> None:
    """Refuse an output inside (or equal to) one of ``directories``, which the command reads (``predict``'s model
    directory): an input is never written into."""
    target = Path(output).resolve()
    for directory in directories:
        if directory is None:
            continue
        resolved = Path(directory).resolve()
        if resolved == target or resolved in target.parents:
            raise ConfigError(f"--output {output} is inside {directory}, which {command} reads; an input is never "
                              "written into: choose another --output")


def lock_path(directory: Path) -> Path:
    directory = Path(directory).resolve()
    if not directory.name:
        raise ConfigError(f"--output {directory} is not a directory paddle-dynafast can write")
    return directory.parent / f".{directory.name}.lock"


@contextlib.contextmanager
def locked(directory: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of ``directory`` (see the module docstring); refused at once if another process
    holds it, with its PID. The lock file is opened without following a link (a link planted under its name would
    have us truncate whatever it points at) and must be a regular file. It is removed on release."""
    path = lock_path(Path(directory))
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o666)
        except OSError as error:  # a read-only or missing location: said before any work
            if os.path.islink(path):
                raise ArtifactError(f"the lock file {path} of --output {directory} is a symbolic link (to "
                                    f"{os.readlink(path)}); paddle-dynafast never writes through a link: remove "
                                    "it") from None
            raise OSError(error.errno, f"cannot write --output {directory}: {error.strerror} ({path})") from error
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ArtifactError(f"the lock file {path} of --output {directory} is not a regular file: remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputBusyError(f"{directory} is being written by another paddle-dynafast process (PID {holder}, "
                                  f"lock {path}); wait for it to finish or stop it") from None
        try:  # the last holder may have removed the file between our open and our lock: lock the file that is there
            same = os.lstat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(path).st_ino == os.fstat(fd).st_ino:  # ours still: not a file put in its place
                os.unlink(path)
        os.close(fd)


def _holder(fd: int) -> str:
    """The PID the lock's holder wrote; it writes it just after taking the lock, so wait a moment for it."""
    for _ in range(50):
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        if text:
            return text
        time.sleep(0.01)
    return "unknown"


def remove_leftovers(directory: Path, inside: Optional[Sequence[str]] = None) -> None:
    """Remove the temporaries an interrupted writer of ``directory`` left beside it, and in it: every one when
    ``inside`` is None, else those of the files named in ``inside``."""
    found = atomic.leftovers(directory.parent, name=directory.name)
    found += [p for p in atomic.leftovers(directory)
              if inside is None or atomic.leftovers_name(p) in inside]
    for path in found:
        logger.warning("removing %s, left behind by an interrupted run", path)
        atomic.remove(path)


def check_output(directory: Path, output: Output, replace: bool) -> bool:
    """Whether ``directory`` holds an earlier output of this command; refuses what the command may not write."""
    if directory.exists() and not directory.is_dir():
        raise ArtifactError(f"--output {directory} is a file, not a directory")
    if not directory.exists():
        return False
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"--output {directory} is not writable")
    temporaries = set(atomic.leftovers(directory))
    if not [p for p in directory.iterdir() if p not in temporaries]:
        return False
    if output.owns(directory):
        if not replace and not output.resumable:
            raise ArtifactError(f"{directory} holds an earlier {output.command} output; pass {output.flag} to "
                                "replace it, or choose another --output")
        return True
    if output.files is not None:  # writes named files beside whatever else is there, if none of them exists
        taken = [name for name in output.files if (directory / name).exists()]
        if not taken:
            return False
        raise ArtifactError(f"{directory / taken[0]} exists and was not written by paddle-dynafast "
                            f"{output.command}; choose another --output (nothing was changed)")
    why = f"its {output.marker} is not a {output.command} directory's" if (directory / output.marker).is_file() \
        else f"it has no {output.marker}"
    raise ArtifactError(f"{directory} is not empty and paddle-dynafast {output.command} did not write it ({why}); "
                        f"choose another --output: nothing in it is changed, {output.flag} included")


@contextlib.contextmanager
def claim(directory: str | Path, output: Output, inputs: Sequence[Optional[str | Path]] = (),
          replace: bool = False, lock: bool = True) -> Iterator[bool]:
    """Claim ``directory`` for ``output`` (see the module docstring); yields whether an earlier output of the
    command is there (to resume or replace). ``lock=False`` for the ranks of a distributed run other than 0."""
    directory = Path(directory)
    check_not_input(directory, inputs, output.command, whole=output.files is None)
    with locked(directory) if lock else contextlib.nullcontext():
        earlier = check_output(directory, output, replace)
        if lock:
            remove_leftovers(directory, None if earlier or output.files is None else output.files)
        yield earlier


def is_stream(path: Path) -> bool:
    """``path`` is (or links to) a terminal, a pipe or a socket: written as it is, never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@contextlib.contextmanager
def claim_file(path: str | Path, command: str, inputs: Sequence[Optional[str | Path]] = (),
               input_dirs: Sequence[Optional[str | Path]] = (), replace: bool = False,
               encoding: str = "utf-8") -> Iterator[IO]:
    """Claim the output *file* ``path`` (``predict --output``) and yield it open for writing (text in ``encoding``):
    never one of ``inputs`` nor inside one of ``input_dirs``, one writer at a time (the lock of ``path``), what a
    killed run left beside it removed, an existing file replaced only with ``replace`` (``--overwrite``), and
    written atomically: the file appears whole when the block succeeds; on an error (a full disk) it is left as it
    was. A stream (``/dev/stdout``, a named pipe) is written as it is."""
    path = Path(path)
    check_not_input(path, inputs, command, whole=False)
    check_not_inside(path, input_dirs, command)
    if path.is_dir():
        raise ArtifactError(f"--output {path} is a directory; {command} writes one file")
    if is_stream(path):  # /dev/stdout, a named pipe: nothing to replace (nor a place beside it to lock or write)
        with open(path, "w", encoding=encoding) as f:
            yield f
        return
    with locked(path):
        remove_leftovers(path, inside=())
        if os.path.lexists(path) and not replace:
            raise ArtifactError(f"--output {path} exists; pass --overwrite to replace it, or choose another --output "
                                "(nothing was changed)")
        with atomic.atomic_file(path, encoding=encoding) as f:
            yield f
