"""The accuracy x FLOPs x exit-layer grid over widths and speeds, as JSON, Markdown and a plot.

Every classifier's probabilities are computed once per width (one full pass,
:class:`SplitProbabilities`, kept as ``layer_probs.npz`` beside the report);
the exits at each speed then follow in NumPy
(:func:`paddle_dynafast.model.exit.simulate_exits`, tested equal to the batched
exit loop), and so do PABEE's patience exits (:mod:`.criteria`). FLOPs are
analytic, per sample, from its real token count, its width and its exit layer,
branches included; the speed-up is against the full model (width 1.0, every
layer, no branches).

Every point's accuracy difference to the full model (width 1.0, speed 0) comes
with its paired-bootstrap 95 % interval and McNemar's p-value
(:mod:`paddle_dynafast.stats`), on the same examples. The grid is an
:class:`~paddle_dynafast.analysis.results.EvaluationResult`.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import paddle

from .. import atomic, data, outputs, stats
from ..config import BootstrapConfig, BranchConfig, DataConfig, EvaluateConfig
from ..errors import DataError
from ..model.dynafast import DynaFastModel
from ..model.exit import check_speed, simulate_exits
from ..model.flops import BertShape, full_flops, sample_flops
from ..model.loading import check_max_seq_len
from ..model.over_loader import layer_probabilities
from . import criteria
from .results import EvaluationResult, GridPoint, PatiencePoint

logger = logging.getLogger(__name__)

TABLE_SPEEDS = (0.0, 0.1, 0.3, 0.5, 0.8)
"""The speeds of the FastBERT paper's tables."""

PROBS_FILE = "layer_probs.npz"


@dataclass
class SplitProbabilities:
    """Every classifier's probabilities at every width on one labelled split: what any exit criterion needs."""

    probs: Dict[float, np.ndarray]
    """Width -> ``[examples, num_layers, num_labels]`` (float32)."""
    gold: np.ndarray
    """``[examples]`` label ids."""
    tokens: np.ndarray
    """``[examples]`` token counts."""
    fingerprint: str = ""
    """Which examples (:func:`paddle_dynafast.data.fingerprint`)."""
    reference: Optional[np.ndarray] = None
    """``[examples, num_labels]``: the probabilities of the model the user had before compression (the teacher),
    the accuracy reference of calibration; None: the full model (width 1.0, final classifier) is the reference."""

    def full_model_correct(self) -> np.ndarray:
        """``[examples]``: the full model (width 1.0, final classifier) is right."""
        if 1.0 not in self.probs:
            raise ValueError("no probabilities at width 1.0, the full model to compare with")
        return self.probs[1.0][:, -1].argmax(-1) == self.gold

    def reference_correct(self) -> np.ndarray:
        """``[examples]``: the reference is right: the teacher when its probabilities are here, else the full
        model."""
        if self.reference is None:
            return self.full_model_correct()
        return self.reference.argmax(-1) == self.gold

    def part(self, index: np.ndarray) -> "SplitProbabilities":
        """The examples at ``index`` (the reference's too)."""
        return SplitProbabilities({w: p[index] for w, p in self.probs.items()}, self.gold[index], self.tokens[index],
                                  reference=None if self.reference is None else self.reference[index])

    @classmethod
    def pool(cls, first: "SplitProbabilities", second: "SplitProbabilities") -> "SplitProbabilities":
        """The examples of both, ``first``'s then ``second``'s, at the widths both have (the reference too when
        both have one)."""
        widths = sorted(set(first.probs) & set(second.probs), reverse=True)
        both = first.reference is not None and second.reference is not None
        return cls({w: np.concatenate([first.probs[w], second.probs[w]]) for w in widths},
                   np.concatenate([first.gold, second.gold]), np.concatenate([first.tokens, second.tokens]),
                   reference=np.concatenate([first.reference, second.reference]) if both else None)

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` atomically (compressed; float32 probabilities: examples x layers x labels per width)."""
        widths = sorted(self.probs, reverse=True)
        arrays = {f"width_{w}": self.probs[w].astype("float32") for w in widths}
        if self.reference is not None:
            arrays["reference"] = self.reference.astype("float32")
        buffer = io.BytesIO()
        np.savez_compressed(buffer, widths=np.asarray(widths), gold=self.gold, tokens=self.tokens,
                            fingerprint=np.asarray(self.fingerprint), **arrays)
        atomic.write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "SplitProbabilities":
        with np.load(str(path)) as f:
            widths = [float(w) for w in f["widths"]]
            return cls(probs={w: f[f"width_{w}"] for w in widths}, gold=f["gold"], tokens=f["tokens"],
                       fingerprint=str(f["fingerprint"]),
                       reference=f["reference"] if "reference" in f.files else None)


def split_probabilities(model: DynaFastModel, loader, gold: Sequence[int], tokens: Sequence[int],
                        widths: Sequence[float], fingerprint: str = "") -> SplitProbabilities:
    """One pass per width (width 1.0 always included, the reference) over a labelled split."""
    widths = sorted({1.0, *(float(w) for w in widths)}, reverse=True)
    return SplitProbabilities({w: layer_probabilities(model.at(w), loader) for w in widths}, np.asarray(gold),
                              np.asarray(tokens), fingerprint)


class _Measured(NamedTuple):
    accuracy: float
    mean_flops: float
    flops_speedup: float
    mean_exit_layer: float
    correct: np.ndarray


def _measure(split: SplitProbabilities, shape: BertShape, branch_config: BranchConfig, width: float,
             probs: np.ndarray, exit_layer: np.ndarray, full_flops: float) -> _Measured:
    flops = sample_flops(shape, branch_config, split.tokens, exit_layer, width)
    correct = probs.argmax(-1) == split.gold
    return _Measured(float(correct.mean()), float(flops.mean()), full_flops / float(flops.mean()),
                     float(exit_layer.mean()), correct)


def entropy_points(split: SplitProbabilities, shape: BertShape, branch_config: BranchConfig,
                   widths: Sequence[float], speeds: Sequence[float]) -> Tuple[List[GridPoint], np.ndarray]:
    """The entropy-exit grid without intervals, and every point's correctness ``[examples, points]``."""
    full = float(full_flops(shape, split.tokens).mean())
    points, correct = [], []
    for width in widths:
        for speed in speeds:
            p, exit_layer, _ = simulate_exits(split.probs[float(width)], check_speed(speed))
            m = _measure(split, shape, branch_config, width, p, exit_layer, full)
            points.append(GridPoint(float(width), float(speed), m.accuracy, m.mean_flops, m.flops_speedup,
                                    m.mean_exit_layer))
            correct.append(m.correct)
    return points, np.stack(correct, axis=1)


def patience_points(split: SplitProbabilities, shape: BertShape, branch_config: BranchConfig,
                    widths: Sequence[float], patience: Sequence[int]) -> Tuple[List[PatiencePoint], np.ndarray]:
    """PABEE's points without comparisons, and their correctness ``[examples, points]``."""
    full = float(full_flops(shape, split.tokens).mean())
    points, correct = [], []
    for width in widths:
        for t in patience:
            p, exit_layer = criteria.simulate_patience(split.probs[float(width)], t)
            m = _measure(split, shape, branch_config, width, p, exit_layer, full)
            points.append(PatiencePoint(float(width), int(t), m.accuracy, m.mean_flops, m.flops_speedup,
                                        m.mean_exit_layer))
            correct.append(m.correct)
    return points, np.stack(correct, axis=1) if correct else np.zeros((len(split.gold), 0), dtype=bool)


def _interval(boot: np.ndarray, i: int, j: int, level: float) -> Tuple[float, float]:
    low, high = stats.percentile_interval(boot[:, i] - boot[:, j], level)
    return float(low), float(high)


def with_intervals(points: Sequence, correct: np.ndarray, reference: np.ndarray,
                   bootstrap: BootstrapConfig = BootstrapConfig()) -> List:
    """``points`` (grid or patience points, one column of ``correct`` each) with ``delta``, its paired interval
    and McNemar's p against the ``reference`` correctness (the full model)."""
    boot = stats.bootstrap_accuracies(np.column_stack([reference, correct]), bootstrap.samples, bootstrap.seed)
    out = []
    for k, point in enumerate(points):
        low, high = _interval(boot, k + 1, 0, bootstrap.level)
        out.append(replace(point, delta=float(correct[:, k].mean() - reference.mean()), delta_low=low,
                                       delta_high=high, mcnemar_p=stats.mcnemar(correct[:, k], reference).p_value))
    return out


def patience_against_entropy(patience: Sequence[PatiencePoint], patience_correct: np.ndarray,
                             entropy: Sequence[GridPoint], entropy_correct: np.ndarray,
                             bootstrap: BootstrapConfig = BootstrapConfig()
                             ) -> Tuple[List[PatiencePoint], Dict[float, Dict]]:
    """Each patience point against the entropy point of its width that is at least as cheap (paired interval and
    McNemar), and per width the entropy curve against the patience points at equal FLOPs (interpolated)."""
    boot = stats.bootstrap_accuracies(np.column_stack([patience_correct, entropy_correct]), bootstrap.samples,
                                      bootstrap.seed)
    offset = patience_correct.shape[1]
    out = []
    for k, point in enumerate(patience):
        same_width = [i for i, e in enumerate(entropy) if e.width == point.width]
        match = criteria.matched_at_flops([entropy[i].flops_speedup for i in same_width], point.flops_speedup)
        if match is None:
            out.append(point)
            continue
        i = same_width[match]
        low, high = _interval(boot, k, offset + i, bootstrap.level)
        out.append(replace(
            point, entropy_speed=entropy[i].speed, entropy_accuracy=entropy[i].accuracy,
            entropy_flops_speedup=entropy[i].flops_speedup,
            vs_entropy=float(patience_correct[:, k].mean() - entropy_correct[:, i].mean()), vs_entropy_low=low,
            vs_entropy_high=high, vs_entropy_p=stats.mcnemar(patience_correct[:, k], entropy_correct[:, i]).p_value))
    summary = {}
    for width in sorted({p.width for p in patience}, reverse=True):
        summary[width] = criteria.compare_at_equal_flops(
            [(e.flops_speedup, e.accuracy) for e in entropy if e.width == width],
            [(p.flops_speedup, p.accuracy) for p in patience if p.width == width])
    return out, summary


def speed_grid(model: DynaFastModel, loader, gold: Sequence[int], tokens: Sequence[int],
               widths: Sequence[float], speeds: Sequence[float],
               bootstrap: BootstrapConfig = BootstrapConfig()) -> List[GridPoint]:
    """Accuracy (with its interval against the full model), mean FLOPs and mean exit layer at every (width, speed)
    on one labelled split."""
    split = split_probabilities(model, loader, gold, tokens, widths)
    shape = BertShape.from_config(model.backbone.config)
    points, correct = entropy_points(split, shape, model.branches.config, widths, speeds)
    return with_intervals(points, correct, split.full_model_correct(), bootstrap)


def _delta_cell(p) -> str:
    if p.delta is None:
        return " | "
    return f"{100 * p.delta:+.2f} [{100 * p.delta_low:+.2f}, {100 * p.delta_high:+.2f}] | {p.mcnemar_p:.3g}"


def markdown_table(points: Sequence[GridPoint], speeds: Sequence[float] = TABLE_SPEEDS) -> str:
    """One row per (width, speed) at ``speeds``: accuracy, its difference to the full model with the 95 % paired
    bootstrap interval and McNemar's p, FLOPs speed-up, mean exit layer."""
    lines = ["| width | speed | accuracy | Δ vs full model [95 % CI] | McNemar p | mean FLOPs | FLOPs speed-up "
             "| mean exit layer |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    wanted = {round(s, 6) for s in speeds}
    for p in points:
        if round(p.speed, 6) in wanted:
            lines.append(f"| {p.width:g} | {p.speed:g} | {100 * p.accuracy:.2f} | {_delta_cell(p)} "
                         f"| {p.mean_flops / 1e6:.1f} M | {p.flops_speedup:.2f}x | {p.mean_exit_layer:.2f} |")
    return "\n".join(lines) + "\n"


def patience_table(points: Sequence[PatiencePoint], summary: Dict[float, Dict]) -> str:
    """PABEE's points against the entropy point at least as cheap, and the equal-FLOPs summary per width."""
    lines = ["| width | patience | accuracy | Δ vs full model [95 % CI] | FLOPs speed-up | mean exit layer "
             "| entropy at ≥ that speed-up | patience − entropy [95 % CI] | McNemar p |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in points:
        delta = "" if p.delta is None else f"{100 * p.delta:+.2f} [{100 * p.delta_low:+.2f}, {100 * p.delta_high:+.2f}]"
        if p.entropy_speed is None:
            match = "none as cheap | | "
        else:
            match = (f"speed {p.entropy_speed:g}: {100 * p.entropy_accuracy:.2f} / {p.entropy_flops_speedup:.2f}x "
                     f"| {100 * p.vs_entropy:+.2f} [{100 * p.vs_entropy_low:+.2f}, {100 * p.vs_entropy_high:+.2f}] "
                     f"| {p.vs_entropy_p:.3g}")
        lines.append(f"| {p.width:g} | {p.patience} | {100 * p.accuracy:.2f} | {delta} | {p.flops_speedup:.2f}x "
                     f"| {p.mean_exit_layer:.2f} | {match} |")
    lines.append("")
    for width, c in summary.items():
        lines.append(f"Width {width:g}: the entropy curve, interpolated at equal FLOPs speed-up, is at least as "
                     f"accurate as patience at {c['base_better_or_equal']} of {c['compared']} points, by "
                     f"{c['mean_gap_points']:+.2f} points on average.")
    return "\n".join(lines) + "\n"


def plot(points: Sequence[GridPoint], path: str | Path, title: str) -> None:
    """Accuracy against FLOPs speed-up, one curve per width (matplotlib, written atomically as PNG)."""
    import matplotlib  # optional at import time: only plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for width in sorted({p.width for p in points}, reverse=True):
        curve = sorted((p for p in points if p.width == width), key=lambda p: p.flops_speedup)
        axes.plot([p.flops_speedup for p in curve], [100 * p.accuracy for p in curve], marker=".", label=f"width {width:g}")
    axes.set_xlabel("FLOPs speed-up against the full model (x)")
    axes.set_ylabel("accuracy (%)")
    axes.set_xscale("log")
    axes.grid(True, alpha=0.3)
    axes.legend()
    axes.set_title(title)
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=120)
    plt.close(figure)
    atomic.write_bytes(path, png.getvalue())


def write_grid(result: EvaluationResult, output_dir: str | Path, name: str, title: str) -> Dict[str, Path]:
    """``name.json`` (:meth:`EvaluationResult.to_json`), ``name.md`` (the table speeds, and patience against
    entropy if measured) and ``name.png`` (the curves)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: output_dir / f"{name}.{ext}" for ext in ("json", "md", "png")}
    text = f"# {title}\n\n" + markdown_table(result.points)
    if result.patience_points:
        text += ("\n## PABEE patience against entropy at equal FLOPs\n\n"
                 + patience_table(result.patience_points, result.patience_vs_entropy))
    atomic.write_json(paths["json"], result.to_json())
    atomic.write_text(paths["md"], text)
    plot(result.points, paths["png"], title)
    return paths


class LabelledSplit(NamedTuple):
    loader: paddle.io.DataLoader
    gold: List[int]
    tokens: List[int]
    """Token count of every example."""
    fingerprint: str
    """Which examples these are (:func:`paddle_dynafast.data.fingerprint`)."""


def load_split(model: DynaFastModel, data_config: DataConfig, split: str, batch_size: int) -> LabelledSplit:
    """One labelled split, encoded with the model's tokenizer and labels; ``calibration``: dev and the training
    examples held out to calibrate with (:func:`paddle_dynafast.data.calibration_examples`)."""
    check_max_seq_len(model.backbone.config, data_config.max_seq_len, "the model")
    examples = split_examples(data.load_splits(data_config), split, data_config.data_dir)
    features = data.encode(examples, model.tokenizer, data_config.max_seq_len, model.labels)
    loader = data.make_loader(features, model.tokenizer.pad_token_id, batch_size, shuffle=False)
    return LabelledSplit(loader, [f.label for f in features], [len(f.input_ids) for f in features],
                         data.fingerprint(examples))


def split_examples(splits: Dict[str, List[data.Example]], split: str, data_dir: str) -> List[data.Example]:
    """The examples of ``split`` (``calibration``: dev and the holdout); a split the folder lacks is an error naming
    it."""
    if split == data.CALIBRATION:
        return data.calibration_examples(splits)
    if split not in splits:
        raise DataError(f"{data_dir} has no {split} split")
    return splits[split]


def evaluate_probabilities(split: SplitProbabilities, shape: BertShape, branch_config: BranchConfig,
                           widths: Sequence[float], speeds: Sequence[float], patience: Sequence[int] = (),
                           bootstrap: BootstrapConfig = BootstrapConfig()) -> EvaluationResult:
    """The entropy grid and the patience points with every interval, from probabilities alone (NumPy)."""
    reference = split.full_model_correct()
    points, correct = entropy_points(split, shape, branch_config, widths, speeds)
    points = with_intervals(points, correct, reference, bootstrap)
    if not patience:
        return EvaluationResult(tuple(points))
    waiting, waiting_correct = patience_points(split, shape, branch_config, widths, patience)
    waiting = with_intervals(waiting, waiting_correct, reference, bootstrap)
    waiting, summary = patience_against_entropy(waiting, waiting_correct, points, correct, bootstrap)
    return EvaluationResult(tuple(points), tuple(waiting), summary)


def run_evaluation(config: EvaluateConfig, overwrite: bool = False, trust_pickle: bool = False) -> EvaluationResult:
    """``paddle-dynafast evaluate``: the grid of ``config`` written as JSON, Markdown and PNG, the patience points
    beside it, and every classifier's probabilities (``layer_probs.npz``) to re-simulate any exit from. An earlier
    evaluation in the output directory is replaced only with ``overwrite`` (:mod:`paddle_dynafast.outputs`);
    ``trust_pickle`` reads pickled weights of an older version."""
    with outputs.claim(config.output_dir, outputs.EVALUATE, [config.model_dir, config.data.data_dir], overwrite):
        return _evaluate(config, trust_pickle)


def _evaluate(config: EvaluateConfig, trust_pickle: bool) -> EvaluationResult:
    model = DynaFastModel.load(config.model_dir, trust_pickle=trust_pickle)
    widths = config.widths or model.widths
    for width in widths:
        model.at(width)  # a width without branches is an error before any work
    split = load_split(model, config.data, config.split, config.batch_size)
    probs = split_probabilities(model, split.loader, split.gold, split.tokens, widths, split.fingerprint)
    shape = BertShape.from_config(model.backbone.config)
    result = evaluate_probabilities(probs, shape, model.branches.config, widths, config.speeds, config.patience,
                                    config.bootstrap)
    result = replace(result, examples=len(split.gold), fingerprint=split.fingerprint, config=config)
    probs.save(Path(config.output_dir) / PROBS_FILE)
    write_grid(result, config.output_dir, "evaluation", f"{Path(config.model_dir).name}, {config.split} split")
    return result
