"""Choosing the runtime by measuring on the machine at hand, not by guess.

Which runtime is fastest depends on the CPU (its BLAS code path, AMX, AVX-512),
the batch size, the model and what else runs on the cores: on one machine Paddle
Inference's oneDNN kernels win at batch 32 and lose at batch 1, on another ONNX
Runtime wins everywhere. :func:`choose` times every candidate that can run an
export in a given precision (interleaved, on the export's own texts or on token
ids of typical lengths), picks the fastest for throughput or for latency, and
remembers the choice in a small JSON file keyed by the export's manifest, the CPU (and
``MKL_DEBUG_CPU_TYPE`` when set), the thread count, the precision and the objective, so the measurement runs once
per machine. ``Predictor(..., runtime="auto")`` and ``--runtime auto`` use it;
``paddle-dynafast bench --choose`` prints the measurement.

The remembered choices are a cache, never a reason to fail: a file that cannot be read (damaged, a link, its
directory a file) or an entry of the wrong shape is measured again, with a warning naming the file; one that cannot
be written (read-only) is a warning naming it, and the command goes on with its measured choice.
"""
from __future__ import annotations

import hashlib
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import atomic, files
from ..config.runtime import Precision, RuntimeName, as_precision, as_runtime
from ..data.wordpiece import WordPiece
from ..errors import ArtifactError, ConfigError
from ..mkl import MKL_CPU_TYPE
from .base import Runtime
from .export_info import INT8_ONNX_FILE, ONNX_FILE, ExportInfo
from .manifest import MANIFEST_FILE
from .registry import open_named

logger = logging.getLogger(__name__)

OBJECTIVES = ("throughput", "latency")


@dataclass(frozen=True)
class Candidate:
    """One way of running an export: a runtime, a precision and the runtime's options."""

    runtime: RuntimeName
    precision: Precision = Precision.FP32
    options: Tuple[Tuple[str, object], ...] = ()
    """``(name, value)`` pairs for the runtime's constructor."""

    def __post_init__(self) -> None:  # strings (a remembered choice's JSON) become the names they spell
        object.__setattr__(self, "runtime", as_runtime(self.runtime))
        object.__setattr__(self, "precision", as_precision(self.precision))

    @property
    def name(self) -> str:
        return f"{self.runtime} {self.precision}" + "".join(f" {k}={v}" for k, v in self.options)

    def open(self, directory: str | Path, threads: int) -> Runtime:
        return open_named(directory, self.runtime, threads, self.precision, **dict(self.options))

    def to_json(self) -> Dict[str, object]:
        return {"runtime": self.runtime, "precision": self.precision, "options": dict(self.options)}

    @classmethod
    def from_json(cls, raw: Dict[str, object]) -> "Candidate":
        return cls(raw["runtime"], raw["precision"], tuple(sorted(raw["options"].items())))


def candidates(directory: str | Path, precision: Precision | str = Precision.FP32) -> List[Candidate]:
    """Every runtime that can run the export in ``directory`` in ``precision``."""
    directory, precision = Path(directory), as_precision(precision)
    paddle_inference, onnxruntime = RuntimeName.PADDLE_INFERENCE, RuntimeName.ONNXRUNTIME
    if precision == Precision.FP32:
        found = [Candidate(paddle_inference, options=(("onednn", False),)),
                 Candidate(paddle_inference, options=(("onednn", True),))]
        if (directory / ONNX_FILE).is_file():
            found.append(Candidate(onnxruntime))
        return found
    if precision == Precision.BF16:
        return [Candidate(paddle_inference, precision, (("onednn", True),))]
    if not (directory / INT8_ONNX_FILE).is_file():
        raise ConfigError(f"{directory} has no {INT8_ONNX_FILE}: export it with --int8")
    return [Candidate(onnxruntime, precision)]


def typical_batches(info: ExportInfo, batch_size: int, count: int, seed: int = 0) -> List[Tuple[np.ndarray, ...]]:
    """``count`` batches of random word pieces between [CLS] and [SEP], of lengths spread over 8..max_seq_len (for
    timing when no texts are at hand)."""
    tokenizer = WordPiece.from_dir(info.directory)
    vocab = len(tokenizer.vocab)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        seq = int(rng.integers(min(8, info.max_seq_len), info.max_seq_len + 1))
        ids = rng.integers(min(1000, vocab // 2), vocab, size=(batch_size, seq)).astype("int64")
        ids[:, 0], ids[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
        out.append((ids, np.zeros_like(ids)))
    return out


@dataclass
class Timing:
    candidate: Candidate
    seconds_per_batch: float
    """Median over rounds."""
    error: Optional[str] = None
    """Why it could not run here (then it is not chosen)."""


def measure(directory: str | Path, found: Sequence[Candidate], batches: Sequence[Tuple[np.ndarray, ...]],
            threads: int = 2, speed: float = 0.0, rounds: int = 3) -> List[Timing]:
    """Median seconds per batch of every candidate over ``batches``, interleaved; one untimed pass first."""
    opened: Dict[Candidate, Runtime] = {}
    timings = {c: Timing(c, float("inf")) for c in found}
    for candidate in found:
        try:
            runtime = opened[candidate] = candidate.open(directory, threads)
            for ids, types, *_ in batches:
                runtime.run_batch(ids, types, speed)
        except ArtifactError:  # the export itself is damaged or altered: no runtime would do better
            raise
        except Exception as error:  # a runtime that does not work here is reported, not chosen
            timings[candidate].error = f"{type(error).__name__}: {error}"
            opened.pop(candidate, None)
    spent = {c: [] for c in opened}
    for _ in range(rounds):
        for candidate, runtime in opened.items():
            started = time.perf_counter()
            for ids, types, *_ in batches:
                runtime.run_batch(ids, types, speed)
            spent[candidate].append((time.perf_counter() - started) / len(batches))
    for candidate, seconds in spent.items():
        timings[candidate].seconds_per_batch = float(np.median(seconds))
    return list(timings.values())


CROSSOVER_SIZES = (1, 2, 4, 8, 16)
"""Batch sizes at which :func:`crossover` times Paddle Inference's plain kernels against oneDNN's."""


def crossover(directory: str | Path, threads: int = 2, speed: float = 0.0, sizes: Sequence[int] = CROSSOVER_SIZES,
              texts: int = 32, rounds: int = 3) -> Tuple[int, Dict[int, Dict[str, float]]]:
    """The smallest batch size in ``sizes`` at which Paddle Inference's oneDNN kernels are at least as fast as its
    plain ones on this export (about ``texts`` typical texts per size, interleaved over ``rounds``), as the
    runtime's ``native_below``: 0 when oneDNN wins from one text on, one past the last size when it never does
    there. Returns it and the milliseconds per batch of both at every size measured."""
    info = ExportInfo.read(directory)
    native, onednn = (Candidate(RuntimeName.PADDLE_INFERENCE, options=(("onednn", flag),)) for flag in (False, True))
    measured: Dict[int, Dict[str, float]] = {}
    for size in sizes:
        batches = typical_batches(info, size, max(2, texts // size), seed=size)
        timings = {t.candidate: t for t in measure(directory, [native, onednn], batches, threads, speed, rounds)}
        failed = [t for t in timings.values() if t.error]
        if failed:
            raise ConfigError(f"Paddle Inference could not run {directory} here: {failed[0].error}")
        measured[size] = {"native": 1000 * timings[native].seconds_per_batch,
                          "onednn": 1000 * timings[onednn].seconds_per_batch}
        if measured[size]["onednn"] <= measured[size]["native"]:
            return (0 if size == sizes[0] else size), measured
    return sizes[-1] + 1, measured


def remembered_crossover(directory: str | Path, threads: int = 2, speed: Optional[float] = None,
                         remember: bool = True, refresh: bool = False) -> int:
    """:func:`crossover` for this export, machine and thread count, at ``speed`` (default: the export's own),
    measured once and remembered beside the runtime choices (``native_below`` ``auto``, and :func:`choose` when
    oneDNN wins): ``refresh`` measures again, ``remember=False`` neither reads nor writes the cache."""
    directory = Path(directory)
    speed = ExportInfo.read(directory).default_speed if speed is None else speed
    key = _key(directory, threads, Precision.FP32, "crossover") + f"|speed={speed:g}"
    path = cache_file()
    known = read_cache(path) if remember else {}
    entry = known.get(key)
    if (not refresh and isinstance(entry, dict) and isinstance(entry.get("native_below"), int)
            and entry["native_below"] >= 0):
        return entry["native_below"]
    below, measured = crossover(directory, threads, speed)
    logger.info("Paddle Inference oneDNN for %s: plain kernels below %d texts per batch; measured (plain, oneDNN) "
                "ms per batch %s", directory, below, ", ".join(f"{size}: {m['native']:.2f}, {m['onednn']:.2f}"
                                                               for size, m in measured.items()))
    if remember:
        known[key] = {"native_below": below, "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
                      "ms_per_batch": {str(size): m for size, m in measured.items()}}
        write_cache(path, known)
    return below


def with_crossover(candidate: Candidate, directory: str | Path, threads: int, speed: float, remember: bool = True,
                   refresh: bool = False) -> Candidate:
    """Paddle Inference with oneDNN in fp32 as ``candidate``, plus the plain kernels for the batches too small for
    oneDNN to pay (:func:`remembered_crossover`); any other candidate as it is."""
    if candidate != Candidate(RuntimeName.PADDLE_INFERENCE, options=(("onednn", True),)):
        return candidate
    below = remembered_crossover(directory, threads, speed, remember, refresh)
    return Candidate(candidate.runtime, candidate.precision, tuple(sorted({**dict(candidate.options),
                                                                          "native_below": below}.items())))


def base_candidate(candidate: Candidate) -> Candidate:
    """``candidate`` without the options :func:`choose` adds after measuring (``native_below``)."""
    return Candidate(candidate.runtime, candidate.precision,
                     tuple((k, v) for k, v in candidate.options if k != "native_below"))


def cache_file() -> Path:
    """``$PADDLE_DYNAFAST_CACHE/runtimes.json``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)
    ``/paddle_dynafast/runtimes.json``: where choices are remembered."""
    if os.environ.get("PADDLE_DYNAFAST_CACHE"):
        return Path(os.environ["PADDLE_DYNAFAST_CACHE"]) / "runtimes.json"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "paddle_dynafast" / "runtimes.json"


def _key(directory: Path, threads: int, precision: Precision, objective: str) -> str:
    """The export's manifest, the CPU, MKL's code path when the environment picks one (the plain kernels run 3x
    slower on AMD without ``MKL_DEBUG_CPU_TYPE=5``, which the command line sets and a Python program may not), the
    thread count, the precision and the objective."""
    manifest = hashlib.sha256((directory / MANIFEST_FILE).read_bytes()).hexdigest()[:16]
    mkl = f"|{MKL_CPU_TYPE}={os.environ[MKL_CPU_TYPE]}" if MKL_CPU_TYPE in os.environ else ""
    return f"{manifest}|{cpu_name()}{mkl}|threads={threads}|{precision}|{objective}"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def choose(directory: str | Path, precision: Precision | str = Precision.FP32, threads: int = 2,
           objective: str = "throughput", speed: Optional[float] = None, remember: bool = True,
           refresh: bool = False) -> Tuple[Candidate, List[Timing]]:
    """The fastest candidate for ``objective`` (``throughput``: batches of 32; ``latency``: one text at a time),
    from the remembered choice or a measurement (a few seconds; ``refresh`` measures again), at ``speed`` (default:
    the export's own, :attr:`ExportInfo.default_speed`: the exit loop's compacted batches cost each runtime
    differently, and speed 0 has none). When Paddle Inference with oneDNN wins throughput, where oneDNN starts to
    pay is measured too (:func:`remembered_crossover`: a few seconds more, remembered where ``native_below``
    ``auto`` finds it) and smaller batches run on the plain kernels (``native_below``): a server's batches are as
    small as its load. Returns the candidate and the timings (empty if remembered)."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective {objective!r} is not one of {list(OBJECTIVES)}")
    directory, precision = Path(directory), as_precision(precision)
    info = ExportInfo.read(directory)
    speed = info.default_speed if speed is None else speed
    found = candidates(directory, precision)
    key = _key(directory, threads, precision, objective)
    path = cache_file()
    known = read_cache(path) if remember else {}
    if key in known and not refresh:
        remembered = _remembered(known[key], path)
        if remembered is not None and base_candidate(remembered) in found:
            return remembered, []
    batch_size, count = (32, 4) if objective == "throughput" else (1, 24)
    timings = measure(directory, found, typical_batches(info, batch_size, count), threads, speed)
    usable = [t for t in timings if t.error is None]
    if not usable:
        raise ConfigError(f"no runtime could run {directory} in {precision} here: "
                          + "; ".join(f"{t.candidate.name}: {t.error}" for t in timings))
    best = min(usable, key=lambda t: t.seconds_per_batch)
    logger.info("runtime for %s (%s, %s, %d threads): %s; measured %s", directory, precision, objective, threads,
                best.candidate.name, ", ".join(f"{t.candidate.name} {1000 * t.seconds_per_batch:.2f} ms"
                                               for t in usable))
    chosen = best.candidate
    if objective == "throughput":
        chosen = with_crossover(best.candidate, directory, threads, speed, remember, refresh)
        known = read_cache(path) if remember else {}  # as the crossover left it
    if remember:
        known[key] = {"candidate": chosen.to_json(), "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
                      "ms_per_batch": {t.candidate.name: round(1000 * t.seconds_per_batch, 3) for t in usable}}
        write_cache(path, known)
    return chosen, timings


def read_cache(path: Path) -> Dict[str, object]:
    """The remembered choices in ``path``; none (and a warning naming it) when it cannot be read."""
    try:
        if not files.exists(path):
            return {}
        known = atomic.read_json(path)
    except (OSError, ArtifactError) as error:  # damaged, a link, a directory that is a file, permissions
        logger.warning("cannot read the runtime cache %s (%s): measuring again", path, error)
        return {}
    if not isinstance(known, dict):
        logger.warning("the runtime cache %s holds a JSON %s, not choices: measuring again", path,
                       type(known).__name__)
        return {}
    return known


def _remembered(entry: object, path: Path) -> Optional[Candidate]:
    """The candidate a cache entry remembers; None (and a warning naming the file) for an entry of the wrong
    shape."""
    try:
        return Candidate.from_json(entry["candidate"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:  # ConfigError is a ValueError
        logger.warning("the runtime cache %s holds an entry of the wrong shape (%s %s): measuring again", path,
                       type(error).__name__, error)
        return None


def write_cache(path: Path, known: Dict[str, object]) -> None:
    """Remember ``known`` in ``path``; a place that cannot be written is a warning naming it, not an error."""
    try:
        atomic.write_json(path, known)
    except OSError as error:
        logger.warning("cannot write the runtime cache %s (%s): the choice is not remembered; set "
                       "PADDLE_DYNAFAST_CACHE to a directory you can write", path, error)
