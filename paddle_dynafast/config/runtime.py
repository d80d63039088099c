"""The configurations of the commands that make or run an export: export, predict, bench and serve; and the
runtime names and precisions, typed once.

:class:`RuntimeName` and :class:`Precision` are ``str`` enums: a member equals its string (``Precision.INT8 ==
"int8"``), prints and formats as it and is written to JSON as it, so callers may keep passing plain strings;
:func:`as_runtime` and :func:`as_precision` turn a string into a member, or raise a :class:`ConfigError` naming it
and what is allowed.
"""
from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional, Tuple, Type, TypeVar, Union

from ..errors import ConfigError
from .base import all_cores, check_count, check_finite, check_threads, usable_cores
from .data import DataConfig


class _Choice(str, enum.Enum):
    """A name from a fixed set: equal to its string, printed and formatted as it (as ``enum.StrEnum`` does)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class RuntimeName(_Choice):
    """What runs a model (``--runtime``); in the order ``--help`` and errors list them."""

    DYGRAPH = "dygraph"
    ONNXRUNTIME = "onnxruntime"
    PADDLE_INFERENCE = "paddle-inference"
    AUTO = "auto"
    """The fastest runtime here for the export and precision, measured once and remembered."""


class Precision(_Choice):
    """The arithmetic a runtime runs the model in (``--precision``)."""

    FP32 = "fp32"
    BF16 = "bf16"
    """oneDNN's bfloat16 kernels on Paddle Inference."""
    INT8 = "int8"
    """``model.int8.onnx`` on ONNX Runtime (``export --int8``)."""


EXPORT_RUNTIMES: Tuple[RuntimeName, ...] = (RuntimeName.PADDLE_INFERENCE, RuntimeName.ONNXRUNTIME)
"""The runtimes of an export directory's own files (dygraph runs the stage directory it was exported from)."""

INT8_ACTIVATIONS: Tuple[str, ...] = ("token", "dynamic", "static")
"""How an int8 export quantizes activations (the first is the default): over each token's range at run time, over
each input tensor's range at run time (one scale for the batch), or over calibrated ranges."""

C = TypeVar("C", bound=_Choice)


def _member(cls: Type[C], what: str, value: object, allowed: Optional[Iterable[C]], where: str = "") -> C:
    allowed = tuple(cls) if allowed is None else tuple(allowed)
    member = next((m for m in allowed if m == value), None)
    if member is None:
        raise ConfigError(f"{what} {value!r} is not one of {[m.value for m in allowed]}" + (f" for {where}" if where
                                                                                           else ""))
    return member


def as_runtime(value: object, allowed: Optional[Iterable[RuntimeName]] = None) -> RuntimeName:
    """``value`` (a :class:`RuntimeName` or its string) as a member of ``allowed`` (default: every one)."""
    return _member(RuntimeName, "runtime", value, allowed)


def as_precision(value: object, allowed: Optional[Iterable[Precision]] = None, where: str = "") -> Precision:
    """``value`` (a :class:`Precision` or its string) as a member of ``allowed`` (default: every one); ``where``
    (a runtime's name) ends the error message."""
    return _member(Precision, "precision", value, allowed, where)


def _path(value: object) -> Optional[str]:
    return None if value is None else str(value)


MEASURE = "auto"
"""``RuntimeConfig.native_below`` to measure on the machine at hand (:func:`paddle_dynafast.runtime.choose.crossover`)."""


def check_native_below(native_below, onednn: bool, precision: Precision, measured: bool = True) -> None:
    """The rule for ``native_below`` (:class:`RuntimeConfig`, ``PaddleInferenceRuntime``): other than 0 only with
    oneDNN on the CPU in fp32; a whole number >= 0, or :data:`MEASURE` where it is still to be measured
    (``measured``)."""
    if native_below and not (onednn and precision == Precision.FP32):
        raise ConfigError("native_below needs oneDNN on the CPU in fp32 (not --no-onednn): it runs small batches on "
                          "the plain kernels instead of oneDNN's")
    if not (measured and native_below == MEASURE) and (isinstance(native_below, bool)
                                                       or not isinstance(native_below, int) or native_below < 0):
        raise ConfigError(f"native_below {native_below!r} is not a whole number >= 0"
                          + (f" or {MEASURE!r}" if measured else " (open_runtime measures 'auto')"))


@dataclass(frozen=True)
class RuntimeConfig:
    """Which runtime runs an export, and how (``--runtime``, ``--threads``, ``--precision``, ...)."""

    name: RuntimeName = RuntimeName.AUTO
    """The runtime; auto: the fastest here for this export and precision, measured once and remembered."""
    threads: int = field(default_factory=all_cores)
    """CPU threads of the runtime, at most the CPUs this process may use (default: all of them)."""
    precision: Precision = Precision.FP32
    """fp32; bf16 on Paddle Inference with oneDNN; int8 on ONNX Runtime (an export made with int8)."""
    onednn: bool = True
    """Paddle Inference: oneDNN kernels on the CPU (False: its plain kernels)."""
    sign_key_file: Optional[str] = None
    """A file whose secret (at least 16 bytes) the export's manifest must be signed with; None: not checked."""
    trust_pickle: bool = False
    """dygraph: read pickled weights, which run any code they carry (only for files you trust)."""
    native_below: Union[int, str] = 0
    """Paddle Inference with oneDNN, fp32: batches of fewer texts run on its plain kernels (oneDNN's fixed cost per
    operator does not pay on small batches); 0: never; :data:`MEASURE` (``"auto"``): the batch size from which
    oneDNN pays here, measured once per export, machine and thread count and remembered (the runtime ``auto``
    does the same when it picks Paddle Inference with oneDNN)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", as_runtime(self.name))
        object.__setattr__(self, "precision", as_precision(self.precision))
        object.__setattr__(self, "sign_key_file", _path(self.sign_key_file))
        check_threads("threads", self.threads)
        check_native_below(self.native_below, self.onednn, self.precision)
        if self.native_below and self.name != RuntimeName.PADDLE_INFERENCE:
            raise ConfigError("native_below is an option of Paddle Inference: name that runtime (--runtime "
                              "paddle-inference); auto measures it when it chooses Paddle Inference with oneDNN")


def _check_speed(speed: float, what: str = "speed") -> None:
    if not 0 <= speed <= 1:
        raise ConfigError(f"{what} {speed} is not in [0, 1]")


@dataclass(frozen=True)
class ExportConfig:
    """One width of a trained model written as a Paddle Inference program (``paddle-dynafast export``), with its
    batched exit loop inside, or the plain classifier."""

    model_dir: str
    """A distill directory (a model with branches); with ``no_exit`` also a finetune or supernet directory."""
    output_dir: str
    """The export directory to write (never the model directory or one holding it)."""
    width: float = 1.0
    """The width to export: one the model was trained at."""
    no_exit: bool = False
    """Export the plain fixed-width classifier, without branches or exit loop."""
    max_seq_len: Optional[int] = None
    """Tokens per text of the export; None: the one the model was trained with."""
    onnx: bool = True
    """Also write model.onnx (paddle2onnx), exit loop included, for ONNX Runtime."""
    int8: bool = False
    """Also write model.int8.onnx: the matrix products in int8 (ONNX Runtime)."""
    int8_activations: str = INT8_ACTIVATIONS[0]
    """With ``int8``: token, every token's activations quantized over their own range at run time (an answer
    never depends on the batch); dynamic, over the whole batch's range; static, over ranges calibrated on training
    texts."""
    calibration: Optional[DataConfig] = None
    """With static activations: the data whose train split calibrates; None: the one the model was trained on."""
    calibration_examples: int = 256
    """With int8: training texts that calibrate static activations and the mixed-precision sweep."""
    int8_float_products: int = 4
    """With int8: how many of the backbone's matrix products stay float32, the ones whose int8 moves the
    probabilities most (a sweep quantizing one at a time over ``calibration_examples`` training texts, no labels
    needed; :mod:`paddle_dynafast.runtime.sensitivity`); 0: every product int8, no sweep."""
    sign_key_file: Optional[str] = None
    """Sign manifest.json with an HMAC-SHA256 of this file's secret (at least 16 bytes); None: unsigned."""

    def __post_init__(self) -> None:
        check_finite(self)
        for name in ("model_dir", "output_dir", "sign_key_file"):
            object.__setattr__(self, name, _path(getattr(self, name)))
        object.__setattr__(self, "width", float(self.width))
        if not 0 < self.width <= 1:
            raise ConfigError(f"width {self.width} is not in (0, 1]")
        if self.max_seq_len is not None and (isinstance(self.max_seq_len, bool) or self.max_seq_len < 3):
            raise ConfigError(f"max_seq_len {self.max_seq_len!r} is too short: [CLS] and [SEP] need 2 of them")
        if self.int8_activations not in INT8_ACTIVATIONS:
            raise ConfigError(f"int8_activations {self.int8_activations!r} is not one of {', '.join(INT8_ACTIVATIONS)}")
        check_count("calibration_examples", self.calibration_examples)
        if isinstance(self.int8_float_products, bool) or self.int8_float_products < 0:
            raise ConfigError(f"int8_float_products {self.int8_float_products!r}: give 0 or more products")


@dataclass(frozen=True)
class PredictConfig:
    """Texts (or sentence pairs) classified by an export (``paddle-dynafast predict``), JSON lines out."""

    model_dir: str
    """An export directory."""
    input_file: Optional[str] = None
    """One text per line, a .tsv (``text_b`` for pairs), a .jsonl, or LABEL TEXT lines with ``labeled``; None:
    standard input."""
    labeled: bool = False
    """The input is LABEL TEXT lines (the accuracy against them is reported)."""
    jsonl: bool = False
    """The input is JSON lines ``{"text": ..., "text_b": ..., "label": ...}`` (text_b and label optional)."""
    output_file: Optional[str] = None
    """Where the JSON lines go, written atomically, never inside ``model_dir``; None: standard output."""
    speed: Optional[float] = None
    """The exit threshold in [0, 1] (0: no early exit); None: the one the export's promise is about, else 0."""
    batch_size: int = 32
    """Texts per batch (batches are grouped by length)."""
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    """What runs the export."""
    overwrite: bool = False
    """Replace an existing ``output_file`` (without it, an existing file is refused)."""

    def __post_init__(self) -> None:
        for name in ("model_dir", "input_file", "output_file"):
            object.__setattr__(self, name, _path(getattr(self, name)))
        if self.speed is not None:
            _check_speed(self.speed)
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class BenchSystem:
    """One system of a benchmark: an export directory at a speed, under a name."""

    name: str
    """Its name in the tables."""
    directory: str
    """An export directory."""
    speed: float = 0.0
    """The exit threshold (for an export with the exit loop)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", str(self.directory))
        if not self.name:
            raise ConfigError(f"the system of {self.directory} has no name")
        _check_speed(self.speed, f"speed of system {self.name!r}")


@dataclass(frozen=True)
class BenchConfig:
    """Accuracy, FLOPs, latency and throughput of exported models on one split, interleaved
    (``paddle-dynafast bench``; :func:`paddle_dynafast.runtime.bench.run_bench`)."""

    systems: Tuple[BenchSystem, ...]
    """The systems measured; the first is the reference of every ratio."""
    data_dir: str
    """The data folder holding the split to measure."""
    output_dir: str
    """Where bench.json and bench.md go."""
    split: str = "test"
    """The split measured: train, dev or test."""
    max_examples: Optional[int] = None
    """Use the first N examples of the split; None: all of them."""
    samples: int = 200
    """Texts timed one at a time for the latency."""
    batch_size: int = 32
    """Texts per batch of the throughput passes."""
    rounds: int = 5
    """Throughput passes per system (the median is reported)."""
    runtime: RuntimeConfig = field(default_factory=lambda: RuntimeConfig(threads=min(2, usable_cores())))
    """What runs every system (2 threads by default, or 1 on one CPU: the numbers of a shared machine vary less)."""

    def __post_init__(self) -> None:
        for name in ("samples", "batch_size", "rounds"):
            check_count(name, getattr(self, name))
        object.__setattr__(self, "systems", tuple(self.systems))
        if not self.systems:
            raise ConfigError("no systems to measure")
        names = [s.name for s in self.systems]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"system names {repeated} repeat: every system needs a name of its own")
        object.__setattr__(self, "data_dir", str(self.data_dir))
        object.__setattr__(self, "output_dir", str(self.output_dir))
        if self.split not in ("train", "dev", "test"):
            raise ConfigError(f"split {self.split!r} is not train, dev or test")
        if self.max_examples is not None:
            check_count("max_examples", self.max_examples)


SERVE_BOUNDS = {"batch_window_ms": (0, 10_000), "max_batch_size": (1, 4096), "max_texts": (1, 100_000),
                "max_request_bytes": (1, 1 << 30), "drain_seconds": (0, 3600), "max_connections": (1, 100_000),
                "idle_seconds": (0, 3600), "body_seconds": (0, 3600)}
"""The range of each number of :class:`ServeConfig` (a zero lower bound of a time is excluded, except the window)."""


@dataclass(frozen=True)
class ServeConfig:
    """The HTTP server of an exported model (``paddle-dynafast serve``): where it listens, how it batches, what it
    accepts. Every number is finite and within :data:`SERVE_BOUNDS`."""

    host: str = "127.0.0.1"
    """Interface to listen on (0.0.0.0 for every interface)."""
    port: int = 8189
    """TCP port (0: any free port)."""
    batching: bool = True
    """Dynamic batching: requests that arrive within ``batch_window_ms`` run as one batch. False runs every request
    alone, as it arrives."""
    batch_window_ms: float = 5.0
    """How long the oldest waiting request waits for others of the same speed before its batch runs."""
    max_batch_size: int = 32
    """Texts per batch; a batch closes early when it is full (one request with more texts runs alone, cut into
    batches of this size)."""
    max_texts: int = 64
    """Texts (or pairs) one request may carry; more is refused with 413."""
    max_request_bytes: int = 1 << 20
    """Largest request body; a larger one is refused with 413."""
    speed: Optional[float] = None
    """The speed of a request that gives none (0: no early exit); None: the one the export's promise is about,
    else 0."""
    drain_seconds: float = 30.0
    """On Ctrl-C or SIGTERM, how long requests in flight may take to finish before they are cancelled."""
    max_connections: int = 1000
    """Open connections at most; past it the longest-idle connection is closed for the new one (and the new one is
    refused with 503 when none is idle). It must leave room under the open-file limit (``ulimit -n``)."""
    idle_seconds: float = 5.0
    """A connection that has not sent a whole request head this long after it opened or after its last answer is
    closed."""
    body_seconds: float = 30.0
    """A request whose body has not arrived whole this long after its head is answered 408."""
    workers: int = 1
    """Server processes sharing the port, each with its own runtime and its share of the threads (at most the CPUs
    this process may use)."""

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port!r} is not in [0, 65535]")
        for name in ("max_batch_size", "max_texts", "max_request_bytes", "max_connections", "workers"):
            check_count(name, getattr(self, name))
        for name, (low, high) in SERVE_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            if name.endswith("_seconds"):
                if not low < value <= high:
                    raise ConfigError(f"{name} must be > {low} and <= {high}, got {value!r}")
            elif not low <= value <= high:  # NaN and infinity too
                raise ConfigError(f"{name} must be in [{low}, {high}], got {value!r}")
        if self.speed is not None:
            _check_speed(self.speed)
        usable = usable_cpus()
        if self.workers > usable:
            raise ConfigError(f"workers {self.workers} is more than the {usable} CPU(s) this process may use")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system tells it, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return all_cores()
