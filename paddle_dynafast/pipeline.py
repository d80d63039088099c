"""Every stage in order into one run directory: ``paddle-dynafast pipeline`` and :func:`run_pipeline`.

``RUN/teacher`` (finetune) -> ``RUN/supernet`` -> ``RUN/dynafast`` (distill) ->
``RUN/calibration`` -> ``RUN/evaluation`` (test split) -> ``RUN/export`` (the
calibrated width, exit loop inside) and ``RUN/export-full`` (the teacher without
exits, the baseline) -> ``RUN/summary.json``. A stage whose output is complete
and made with the same configuration is skipped; an interrupted training stage
resumes from its checkpoint.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Optional

from . import artifacts
from .config import (BranchConfig, CalibrateConfig, DataConfig, EvaluateConfig, FinetuneConfig, ModelSize,
                     SelfDistillConfig, SupernetConfig, TrainConfig, normalize_widths, to_dict)

logger = logging.getLogger(__name__)

STAGES = ("finetune", "supernet", "distill", "calibrate", "evaluate", "export")


@dataclass(frozen=True)
class PipelineConfig:
    """All stages of one run."""

    output_dir: str
    """The run directory; every stage writes a subdirectory."""
    data: DataConfig
    """Examples and their cutting, for every stage."""
    model_dir: Optional[str] = None
    """Pretrained model (PaddleNLP or Hugging Face directory); None with random_init: a character vocabulary."""
    random_init: bool = False
    """Start the teacher from random weights."""
    size: ModelSize = field(default_factory=ModelSize)
    """Teacher size when there is no model_dir."""
    finetune: TrainConfig = field(default_factory=TrainConfig)
    supernet: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, lr=2e-5))
    distill: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, lr=5e-4))
    widths: tuple = (1.0, 0.75, 0.5, 0.25)
    """Supernet widths."""
    branch: BranchConfig = field(default_factory=BranchConfig)
    shared_branches: bool = True
    importance_examples: int = 512
    max_accuracy_drop: float = 0.5
    """Calibration budget in dev accuracy points."""
    min_flops_speedup: float = 3.0
    """Reverse calibration budget."""
    bench_samples: int = 100
    """Texts timed at batch 1 for the summary's latency (0 skips the timing)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", normalize_widths(self.widths))


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns; the same content as ``RUN/summary.json``."""

    output_dir: Path
    summary: Dict[str, Any]


def _stage_dirs(root: Path) -> Dict[str, Path]:
    return {"finetune": root / "teacher", "supernet": root / "supernet", "distill": root / "dynafast",
            "calibrate": root / "calibration", "evaluate": root / "evaluation", "export": root / "export",
            "export_full": root / "export-full"}


def _same_config(path: Path, config) -> bool:
    return path.is_file() and artifacts.read_json(path).get("config") == to_dict(config)


def run_pipeline(config: PipelineConfig, logdir: Optional[str] = None) -> PipelineResult:
    """Run (or finish) every stage of ``config``; returns the summary written to ``summary.json``."""
    from tqdm.auto import tqdm

    from .calibrate import run_calibration
    from .distill import self_distill
    from .evaluate import run_evaluation
    from .export import ArtifactError, export_model, verify
    from .supernet import train_supernet
    from .train import finetune

    root = Path(config.output_dir)
    dirs = _stage_dirs(root)
    data = config.data
    log = (lambda name: str(Path(logdir) / name)) if logdir else (lambda name: None)
    seconds: Dict[str, float] = {}
    summary: Dict[str, Any] = {"config": to_dict(config), "paths": {k: str(v) for k, v in dirs.items()}}
    progress = tqdm(total=len(STAGES), desc="pipeline", unit="stage", position=0, dynamic_ncols=True)

    def stage(name: str):
        progress.set_postfix_str(name)
        logger.info("pipeline stage %d/%d: %s", STAGES.index(name) + 1, len(STAGES), name)
        return time.perf_counter()

    def done(name: str, started: float) -> None:
        seconds[name] = round(time.perf_counter() - started, 1)
        progress.update(1)

    try:
        started = stage("finetune")
        teacher = finetune(FinetuneConfig(output_dir=str(dirs["finetune"]), data=data, train=config.finetune,
                                          model_dir=config.model_dir, random_init=config.random_init,
                                          size=config.size), logdir=log("finetune"))
        done("finetune", started)

        started = stage("supernet")
        sup = train_supernet(SupernetConfig(output_dir=str(dirs["supernet"]), teacher_dir=str(dirs["finetune"]),
                                            data=data, train=config.supernet, widths=config.widths,
                                            importance_examples=config.importance_examples), logdir=log("supernet"))
        done("supernet", started)

        started = stage("distill")
        self_distill(SelfDistillConfig(output_dir=str(dirs["distill"]), model_dir=str(dirs["supernet"]), data=data,
                                       train=config.distill, branch=config.branch,
                                       shared_branches=config.shared_branches), logdir=log("distill"))
        done("distill", started)

        started = stage("calibrate")
        calibrate_config = CalibrateConfig(model_dir=str(dirs["distill"]), output_dir=str(dirs["calibrate"]),
                                           data=data, max_accuracy_drop=config.max_accuracy_drop,
                                           min_flops_speedup=config.min_flops_speedup)
        calibration_file = dirs["calibrate"] / "calibration.json"
        calibration = (artifacts.read_json(calibration_file) if _same_config(calibration_file, calibrate_config)
                       else run_calibration(calibrate_config))
        done("calibrate", started)

        started = stage("evaluate")
        evaluate_config = EvaluateConfig(model_dir=str(dirs["distill"]), output_dir=str(dirs["evaluate"]), data=data)
        if not _same_config(dirs["evaluate"] / "evaluation.json", evaluate_config):
            run_evaluation(evaluate_config)
        done("evaluate", started)

        started = stage("export")
        chosen = calibration["fewest_flops_within_accuracy_budget"] or calibration["full_model"]
        for key, source, width, no_exit in (("export", dirs["distill"], chosen["width"], False),
                                            ("export_full", dirs["finetune"], 1.0, True)):
            try:
                info = verify(dirs[key])
                current = info["source"] == str(source) and info["width"] == width
            except ArtifactError:  # missing or altered: export again
                current = False
            if not current:
                export_model(source, dirs[key], width=width, no_exit=no_exit)
        done("export", started)
    finally:
        progress.close()
    latency = _quick_bench(dirs, chosen["speed"], data, config.bench_samples) if config.bench_samples else None

    summary.update({
        "teacher": {k: teacher.metrics.get(k) for k in ("dev_accuracy", "test_accuracy", "train_seconds")},
        "widths": {w: {k: v for k, v in row.items() if k in ("dev_accuracy", "test_accuracy", "parameters",
                                                              "dev_mean_flops")}
                   for w, row in sup.metrics["widths"].items()},
        "operating_point": {"width": chosen["width"], "speed": chosen["speed"], "dev_accuracy": chosen["accuracy"],
                            "dev_flops_speedup": chosen["flops_speedup"]},
        "test_at_operating_point": next((p for p in calibration.get("test", []) if isinstance(p, dict)
                                         and p["width"] == chosen["width"] and p["speed"] == chosen["speed"]), None),
        "latency": latency,
        "stage_seconds": seconds,
        "sizes_mb": {k: round(sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / 1e6, 1)
                     for k, d in dirs.items() if d.is_dir()},
    })
    artifacts.write_json(root / "summary.json", summary)
    return PipelineResult(root, summary)


def _quick_bench(dirs: Dict[str, Path], speed: float, data: DataConfig, samples: int) -> Dict[str, Any]:
    """Latency and throughput of the exported adaptive model against the exported teacher, on test."""
    from . import bench
    from .backbone import load_tokenizer
    from .data import encode, load_splits

    info = artifacts.read_json(dirs["export"] / "export.json")
    splits = load_splits(data.data_dir, data.max_examples, data.dev_fraction)
    split = "test" if "test" in splits else "dev"
    tokenizer = load_tokenizer(dirs["export"])
    features = encode(splits[split], tokenizer, info["max_seq_len"], info["labels"])
    systems = [bench.exported_system(dirs["export_full"], name="teacher, no exit"),
               bench.exported_system(dirs["export"], speed, name=f"width {info['width']:g}, speed {speed:g}")]
    results = bench.measure(systems, features, [f.label for f in features], tokenizer.pad_token_id,
                            samples=min(samples, len(features)), rounds=2)
    return {"split": split, "results": bench.to_json(results), "table": bench.markdown(results, 32)}


def quick(config: PipelineConfig, max_examples: int = 1500) -> PipelineConfig:
    """The demo's quick mode: the first ``max_examples`` of each split, one epoch per stage, 256 examples to
    score importance."""
    one = {"epochs": 1}
    return replace(config, data=replace(config.data, max_examples=max_examples), importance_examples=256,
                   finetune=replace(config.finetune, **one), supernet=replace(config.supernet, **one),
                   distill=replace(config.distill, **one))
