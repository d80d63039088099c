"""The accuracy x FLOPs x exit-layer grid over widths and speeds, as JSON, Markdown and a plot.

Every classifier's probabilities are computed once per width (one full pass);
the exits at each speed then follow in NumPy (:func:`paddle_dynafast.model.exit.simulate_exits`,
tested equal to the batched exit loop). FLOPs are analytic, per sample, from
its real token count, its width and its exit layer, branches included; the
speed-up is against the full model (width 1.0, every layer, no branches).
"""
from __future__ import annotations

import io
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, NamedTuple, Sequence

import numpy as np
import paddle

from .. import artifacts, data, outputs
from ..config import DataConfig, EvaluateConfig, to_dict
from ..errors import DataError
from ..model.backbone import check_max_seq_len
from ..model.dynafast import DynaFastModel
from ..model.exit import check_speed, sample_flops, simulate_exits
from ..model.flops import BertShape, model_flops
from ..model.predict import layer_probabilities

logger = logging.getLogger(__name__)

TABLE_SPEEDS = (0.0, 0.1, 0.3, 0.5, 0.8)
"""The speeds of the FastBERT paper's tables."""


@dataclass(frozen=True)
class GridPoint:
    width: float
    speed: float
    accuracy: float
    mean_flops: float
    flops_speedup: float
    """Mean FLOPs of the full model (width 1.0, all layers, no branches) over this point's mean FLOPs."""
    mean_exit_layer: float


def speed_grid(model: DynaFastModel, loader, gold: Sequence[int], tokens: Sequence[int],
               widths: Sequence[float], speeds: Sequence[float]) -> List[GridPoint]:
    """Accuracy, mean FLOPs and mean exit layer at every (width, speed) on one labelled split."""
    shape = BertShape.from_config(model.backbone.config)
    tokens = np.asarray(tokens)
    full = float(np.mean([model_flops(shape, int(t)) for t in tokens]))
    gold = np.asarray(gold)
    points = []
    for width in widths:
        probs = layer_probabilities(model.at(width), loader)
        for speed in speeds:
            p, exit_layer, _ = simulate_exits(probs, check_speed(speed))
            flops = sample_flops(shape, model.branches.config, tokens, exit_layer, width)
            points.append(GridPoint(width=float(width), speed=float(speed),
                                    accuracy=float((p.argmax(-1) == gold).mean()), mean_flops=float(flops.mean()),
                                    flops_speedup=full / float(flops.mean()),
                                    mean_exit_layer=float(exit_layer.mean())))
    return points


def markdown_table(points: Sequence[GridPoint], speeds: Sequence[float] = TABLE_SPEEDS) -> str:
    """One row per (width, speed) at ``speeds``: accuracy, FLOPs speed-up, mean exit layer."""
    lines = ["| width | speed | accuracy | mean FLOPs | FLOPs speed-up | mean exit layer |",
             "| --- | --- | --- | --- | --- | --- |"]
    wanted = {round(s, 6) for s in speeds}
    for p in points:
        if round(p.speed, 6) in wanted:
            lines.append(f"| {p.width:g} | {p.speed:g} | {100 * p.accuracy:.2f} | {p.mean_flops / 1e6:.1f} M "
                         f"| {p.flops_speedup:.2f}x | {p.mean_exit_layer:.2f} |")
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
    artifacts.write_bytes(path, png.getvalue())


def write_grid(points: Sequence[GridPoint], output_dir: str | Path, name: str, title: str,
               extra: Dict | None = None) -> Dict[str, Path]:
    """``name.json`` (every point), ``name.md`` (the table speeds) and ``name.png`` (the curves)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: output_dir / f"{name}.{ext}" for ext in ("json", "md", "png")}
    artifacts.write_json(paths["json"], {**(extra or {}), "points": [asdict(p) for p in points]})
    artifacts.write_text(paths["md"], f"# {title}\n\n" + markdown_table(points))
    plot(points, paths["png"], title)
    return paths


class LabelledSplit(NamedTuple):
    loader: paddle.io.DataLoader
    gold: List[int]
    tokens: List[int]
    """Token count of every example."""
    fingerprint: str
    """Which examples these are (:func:`paddle_dynafast.data.fingerprint`)."""


def load_split(model: DynaFastModel, data_config: DataConfig, split: str, batch_size: int) -> LabelledSplit:
    """One labelled split, encoded with the model's tokenizer and labels."""
    check_max_seq_len(model.backbone.config, data_config.max_seq_len, "the model")
    splits = data.load_splits(data_config)
    if split not in splits:
        raise DataError(f"{data_config.data_dir} has no {split} split")
    features = data.encode(splits[split], model.tokenizer, data_config.max_seq_len, model.labels)
    loader = data.make_loader(features, model.tokenizer.pad_token_id, batch_size, shuffle=False)
    return LabelledSplit(loader, [f.label for f in features], [len(f.input_ids) for f in features],
                         data.fingerprint(splits[split]))


def run_evaluation(config: EvaluateConfig, overwrite: bool = False, trust_pickle: bool = False) -> List[GridPoint]:
    """``paddle-dynafast evaluate``: the grid of ``config`` written as JSON, Markdown and PNG. An earlier
    evaluation in the output directory is replaced only with ``overwrite`` (:mod:`paddle_dynafast.outputs`);
    ``trust_pickle`` reads pickled weights of an older version."""
    with outputs.claim(config.output_dir, outputs.EVALUATE, [config.model_dir, config.data.data_dir], overwrite):
        return _evaluate(config, trust_pickle)


def _evaluate(config: EvaluateConfig, trust_pickle: bool) -> List[GridPoint]:
    model = DynaFastModel.load(config.model_dir, trust_pickle=trust_pickle)
    widths = config.widths or model.widths
    for width in widths:
        model.at(width)  # a width without branches is an error before any work
    split = load_split(model, config.data, config.split, config.batch_size)
    points = speed_grid(model, split.loader, split.gold, split.tokens, widths, config.speeds)
    write_grid(points, config.output_dir, "evaluation", f"{Path(config.model_dir).name}, {config.split} split",
               extra={"config": to_dict(config), "examples": len(split.gold), "fingerprint": split.fingerprint})
    return points
