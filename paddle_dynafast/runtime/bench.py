"""Wall-clock benchmarks of exported models, next to their accuracy and analytic FLOPs.

Systems are measured in one process, interleaved (A, B, A, B, ...) on the same
pre-tokenised batches, so that the noise of a shared machine falls on all of
them alike; we report medians and ratios against the first system. Latency is
per sample at batch 1 (median and p90 over ``samples`` texts); throughput is
texts per second at ``batch_size`` (median over ``rounds`` passes over the
same texts). Tokenising is not timed: it is the same for every system.

:func:`run_bench` is ``paddle-dynafast bench``: the systems of a
:class:`~paddle_dynafast.config.BenchConfig` measured on a split of a data folder,
the :class:`BenchResult` written to ``bench.json`` and its table to ``bench.md``.
"""
from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import atomic, outputs
from ..config import BenchConfig, DataConfig, Precision, RuntimeName, check_count
from ..data.batching import Collator, FeatureDataset, LengthGroupedBatchSampler
from ..data.encoding import encode
from ..data.readers import load_splits
from ..data.wordpiece import WordPiece
from ..errors import ConfigError, DataError
from .auto import AUTO, open_configured, open_runtime
from .base import Runtime
from .export_info import EXPORT_FILE

logger = logging.getLogger(__name__)

Runner = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]
"""``(input_ids, token_type_ids) -> (probs [batch, labels], exit_layer [batch])``."""


@dataclass
class System:
    name: str
    run: Runner
    flops: Callable[[np.ndarray, np.ndarray], np.ndarray]
    """``(tokens [n], exit_layer [n]) -> FLOPs [n]`` of this system."""
    note: str = ""


@dataclass
class Result:
    name: str
    note: str
    accuracy: float
    mean_flops: float
    mean_exit_layer: float
    latency_ms_median: float
    latency_ms_p90: float
    throughput: float
    """Texts per second at the throughput batch size."""
    ratios: Dict[str, float] = field(default_factory=dict)


def batches(features, pad_id: int, batch_size: int) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(input_ids, token_type_ids, rows)`` per batch, grouped by length as a deployment would."""
    dataset = FeatureDataset(features)
    collate = Collator(pad_id)
    out = []
    for rows in LengthGroupedBatchSampler(dataset.lengths, batch_size, shuffle=False):
        batch = collate([dataset[i] for i in rows])
        out.append((batch["input_ids"], batch["token_type_ids"], batch["index"]))
    return out


def run_all(system: System, prepared, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Predicted label ids and exit layers of every text, in input order."""
    labels, exits = np.zeros(n, dtype="int64"), np.zeros(n, dtype="int64")
    for ids, types, rows in prepared:
        probs, exit_layer = system.run(ids, types)
        labels[rows], exits[rows] = np.asarray(probs).argmax(-1), exit_layer
    return labels, exits


def check_settings(samples: int, batch_size: int, rounds: int) -> None:
    """Each of the counts of :func:`measure` is a whole number >= 1."""
    for name, value in (("samples", samples), ("batch_size", batch_size), ("rounds", rounds)):
        check_count(name, value)


def time_systems(systems: Sequence[System], full, singles, rounds: int) -> Tuple[Dict[str, List[float]], ...]:
    """Seconds of every text of ``singles`` at batch 1 and texts per second over the batches of ``full`` in each
    of ``rounds`` passes, per system name, the systems interleaved text by text and pass by pass; every latency
    shape is run once untimed first (warm kernels)."""
    for system in systems:
        for ids, types, _ in singles:
            system.run(ids, types)
    latency = {s.name: [] for s in systems}
    for ids, types, _ in singles:
        for system in systems:
            started = time.perf_counter()
            system.run(ids, types)
            latency[system.name].append(time.perf_counter() - started)
    n = sum(len(rows) for _, _, rows in full)
    throughput = {s.name: [] for s in systems}
    for _ in range(rounds):
        for system in systems:
            started = time.perf_counter()
            for ids, types, _ in full:
                system.run(ids, types)
            throughput[system.name].append(n / (time.perf_counter() - started))
    return latency, throughput


def measure(systems: Sequence[System], features, gold: Sequence[int], pad_id: int, samples: int = 200,
            batch_size: int = 32, rounds: int = 5) -> List[Result]:
    """Accuracy, mean FLOPs, latency at batch 1 and throughput at ``batch_size`` of every system, interleaved.

    Before any timing every system sees every batch once (the accuracy pass, and
    one untimed pass over the latency texts), so that runtimes that build kernels
    per input shape (oneDNN) are timed warm.
    """
    if not systems:
        raise ConfigError("no systems to measure")
    check_settings(samples, batch_size, rounds)
    if not features:
        raise ConfigError("no texts to measure")
    n = len(features)
    tokens = np.array([len(f.input_ids) for f in features])
    full = batches(features, pad_id, batch_size)
    singles = batches(features[:samples], pad_id, 1)
    quality = {}
    for system in systems:
        labels, exits = run_all(system, full, n)
        quality[system.name] = ((labels == np.asarray(gold)).mean(), system.flops(tokens, exits).mean(), exits.mean())
    latency, throughput = time_systems(systems, full, singles, rounds)
    results = []
    for system in systems:
        accuracy, flops, exit_layer = quality[system.name]
        ms = 1000 * np.asarray(latency[system.name])
        results.append(Result(system.name, system.note, float(accuracy), float(flops), float(exit_layer),
                              float(np.median(ms)), float(np.percentile(ms, 90)),
                              float(np.median(throughput[system.name]))))
    reference = results[0]
    for r in results:
        flops_speedup = reference.mean_flops / r.mean_flops
        r.ratios = {"accuracy_points": round(100 * (r.accuracy - reference.accuracy), 2),
                    "flops_speedup": flops_speedup,
                    "latency_speedup": reference.latency_ms_median / r.latency_ms_median,
                    "throughput_speedup": r.throughput / reference.throughput,
                    "throughput_speedup_per_flops_speedup": (r.throughput / reference.throughput) / flops_speedup}
    return results


def markdown(results: Sequence[Result], batch_size: int) -> str:
    reference = results[0].name
    lines = [f"| system | accuracy | Δ vs {reference} | mean FLOPs | FLOPs speed-up | latency b=1 median / p90 "
             f"| latency speed-up | throughput b={batch_size} | throughput speed-up | measured / FLOPs speed-up |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        q = r.ratios
        lines.append(f"| {r.name} | {100 * r.accuracy:.2f} | {q['accuracy_points']:+.2f} | {r.mean_flops / 1e6:.1f} M "
                     f"| {q['flops_speedup']:.2f}x | {r.latency_ms_median:.2f} / {r.latency_ms_p90:.2f} ms "
                     f"| {q['latency_speedup']:.2f}x | {r.throughput:.0f}/s | {q['throughput_speedup']:.2f}x "
                     f"| {q['throughput_speedup_per_flops_speedup']:.2f} |")
    return "\n".join(lines) + "\n"


def to_json(results: Sequence[Result]) -> List[Dict]:
    return [asdict(r) for r in results]


def runtime_system(runtime: Runtime, speed: float = 0.0, name: Optional[str] = None) -> System:
    """A :class:`System` for any runtime at ``speed``, with its FLOPs from the runtime's
    :class:`~paddle_dynafast.runtime.export_info.ExportInfo`."""
    info = runtime.info
    if speed and not info.exit_loop:
        logger.warning("speed %g has no effect on %s: it was exported without the exit loop", speed, info.directory)
    label = name or f"{info.directory}" + (f" @ speed {speed:g}" if info.exit_loop else "")
    precision = getattr(runtime, "precision", Precision.FP32)
    note = f"width {info.width:g}, {runtime.kind} {precision}, " + (f"exit loop, speed {speed:g}" if info.exit_loop
                                                                     else "no exit")
    return System(label, lambda ids, types: runtime.run_batch(ids, types, speed), info.flops, note)


def exported_system(directory: str | Path, speed: float = 0.0, name: Optional[str] = None,
                    runtime: str = AUTO, threads: int = 2, **options) -> System:
    """:func:`runtime_system` of the runtime ``runtime`` opened on ``directory``."""
    return runtime_system(open_runtime(directory, runtime, threads, **options), speed, name)


@dataclass
class BenchResult:
    """What :func:`run_bench` measured, as ``bench.json`` holds it (:meth:`to_json`)."""

    results: List[Result]
    """One per system, in the config's order; ratios against the first."""
    split: str
    """The split measured."""
    examples: int
    """Texts of the split measured (accuracy, FLOPs and throughput are over all of them)."""
    threads: int
    """CPU threads of every runtime."""
    runtime: RuntimeName
    """The runtime asked for (auto: the fastest here, per system)."""
    onednn: bool
    """Paddle Inference on oneDNN kernels."""
    machine: Dict[str, Any]
    """CPU count, processor and Python version (:func:`machine`)."""
    batch_size: int
    """Texts per batch of the throughput passes."""
    precision: Precision
    """The precision every system ran in."""

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    def markdown(self) -> str:
        return markdown(self.results, self.batch_size)


def machine() -> Dict[str, Any]:
    """The machine a measurement ran on: CPU count, processor and Python version."""
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version()}


def run_bench(config: BenchConfig, overwrite: bool = False) -> BenchResult:
    """Every system of ``config`` (opened on ``config.runtime``) measured on its split by :func:`measure`, the
    result written to ``bench.json`` and its table to ``bench.md`` in ``config.output_dir``.

    The output is claimed first (:func:`paddle_dynafast.outputs.claim`): an earlier bench output is replaced only
    with ``overwrite``. The texts are tokenised as the first system's export does (its ``max_seq_len`` and
    labels, from its ``export.json``); a split the data folder lacks is a :class:`DataError`."""
    inputs = [s.directory for s in config.systems] + [config.data_dir]
    with outputs.claim(config.output_dir, outputs.BENCH, inputs, replace=overwrite):
        runtimes = [open_configured(s.directory, config.runtime) for s in config.systems]
        onednn = [s.name for s, runtime in zip(config.systems, runtimes) if getattr(runtime, "onednn", False)]
        if len(onednn) > 1:
            logger.warning("%s run on oneDNN in one process: at batch 1 such predictors slow each other (2-3x "
                           "measured on SST-2's exports); benchmarks/compare.py times each system alone",
                           ", ".join(onednn))
        systems = [runtime_system(runtime, s.speed, s.name) for s, runtime in zip(config.systems, runtimes)]
        first = config.systems[0].directory  # checked against its manifest when its runtime opened it
        info = atomic.read_json(Path(first) / EXPORT_FILE)
        tokenizer = WordPiece.from_dir(first)
        splits = load_splits(DataConfig(data_dir=config.data_dir, max_examples=config.max_examples))
        if config.split not in splits:
            raise DataError(f"{config.data_dir} has no {config.split} split")
        features = encode(splits[config.split], tokenizer, info["max_seq_len"], info["labels"])
        results = measure(systems, features, [f.label for f in features], tokenizer.pad_token_id,
                          samples=config.samples, batch_size=config.batch_size, rounds=config.rounds)
        result = BenchResult(results=results, split=config.split, examples=len(features),
                             threads=config.runtime.threads, runtime=config.runtime.name,
                             onednn=config.runtime.onednn, machine=machine(), batch_size=config.batch_size,
                             precision=config.runtime.precision)
        out = Path(config.output_dir)
        atomic.write_json(out / "bench.json", result.to_json())
        atomic.write_text(out / "bench.md", result.markdown())
    return result
