"""Per-operator time of exported models in Paddle Inference (its own profiler), at batch 1 and batch 32.

For each export directory and batch size a child process runs Paddle Inference
with ``Config.enable_profile()`` over the test split's texts (native kernels or
oneDNN), and the profiler's event summary, which Paddle prints when the
predictor is destroyed, is parsed into the share of time of each operator. The
table shows the operators that take the most time, grouped: matrix products,
the exit loop's bookkeeping (gather, scatter, nonzero, conditional blocks), the
branch's small operators, and the rest.

    .venv/bin/python benchmarks/profile_ops.py --export runs/sst2/export-full --export runs/sst2/export \\
        --data-dir ../shared/data/sst2 --speed 0.1 --output runs/sst2/profile.md
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

GROUPS = {
    "matrix products": ("matmul", "fc", "fused_matmul"),
    "exit bookkeeping": ("gather", "scatter", "nonzero", "logical_not", "less_than", "greater_than", "any",
                         "full_like", "flatten"),
    "softmax, entropy": ("softmax", "log", "clip", "sum", "multiply"),
    "layer norm, GELU, tanh": ("layer_norm", "gelu", "tanh"),
    "reshape, transpose, slice": ("reshape", "transpose", "slice", "stack", "shape64", "unsqueeze", "squeeze"),
    "elementwise add, scale": ("add", "scale"),
    "constants": ("full", "full_int_array", "full_with_tensor", "arange"),
}


CONTAINERS = ("if_instruction", "yield_instruction")
"""Events whose time is that of the operators inside them (the profiler lists those too)."""


def child(args) -> None:
    """Run one export at one batch size with the profiler on; Paddle prints its report at exit."""
    import numpy as np
    from paddle import inference

    from paddle_dynafast import data
    from paddle_dynafast.model.loading import load_tokenizer
    from paddle_dynafast.runtime.bench import batches

    directory = Path(args.export[0])
    info = json.loads((directory / "export.json").read_text())
    tokenizer = load_tokenizer(directory)
    texts = data.load_splits(args.data_dir)["test"][:args.texts]
    prepared = batches(data.encode(texts, tokenizer, info["max_seq_len"]), tokenizer.pad_token_id, args.batch_size)
    config = inference.Config(str(directory / "model.json"), str(directory / "model.pdiparams"))
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(args.threads)
    config.enable_mkldnn() if args.onednn else config.disable_mkldnn()
    config.disable_glog_info()
    config.enable_profile()
    predictor = inference.create_predictor(config)
    for ids, types, _ in prepared:
        predictor.get_input_handle("input_ids").copy_from_cpu(ids)
        predictor.get_input_handle("token_type_ids").copy_from_cpu(types)
        if info["exit_loop"]:
            predictor.get_input_handle("speed").copy_from_cpu(np.array([args.speed], "float32"))
        predictor.run()


def parse(report: str) -> dict:
    """``{operator: total ms}`` of the top-level events of Paddle's profiler report (nested lines are skipped)."""
    totals = defaultdict(float)
    in_events = False
    for line in report.splitlines():
        if "Event Summary" in line:
            if totals:  # the first summary merges every thread; per-thread ones follow
                break
            in_events = True
            continue
        if not in_events or not line.strip() or line.startswith(("Event", "-")):
            continue
        match = re.match(r"^(\s*)(\S+)\s+(\d+)\s+([\d.]+)", line)
        if match is None or "infermeta" in match.group(2) or "::" in match.group(2):
            continue
        name = match.group(2).rsplit(".", 1)[-1].rstrip("_")  # pd_op.matmul, onednn_op.fc -> matmul, fc
        totals[(len(match.group(1)), name)] += float(match.group(4))
    # operators inside the exit loop's conditional blocks are listed one level deeper, under their block, whose
    # total includes them: count the operators at every level and the blocks themselves not at all
    out = defaultdict(float)
    for (_, name), ms in totals.items():
        if name not in CONTAINERS:
            out[name] += ms
    return dict(out)


def group(shares: dict) -> dict:
    grouped = defaultdict(float)
    for name, ms in shares.items():
        label = next((g for g, names in GROUPS.items() if name in names), "other")
        grouped[label] += ms
    return dict(grouped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", action="append", required=True, help="an export directory (repeat)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--speed", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=320)
    parser.add_argument("--onednn", action="store_true")
    parser.add_argument("--output", default=None, help="write the Markdown table here too")
    parser.add_argument("--batch-size", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch_size is not None:
        return child(args)
    lines = [f"Paddle Inference, {'oneDNN' if args.onednn else 'native kernels'}, {args.threads} threads, "
             f"{args.texts} test texts, speed {args.speed:g} for the exit loop; share of the time the profiler "
             "accounts for (the profiler itself slows every operator, so only the shares are meaningful).", "",
             "| export | batch | " + " | ".join(list(GROUPS) + ["other"]) + " |",
             "| --- | --- | " + " | ".join("---" for _ in range(len(GROUPS) + 1)) + " |"]
    for export in args.export:
        for batch_size in (1, 32):
            done = subprocess.run([sys.executable, __file__, "--export", export, "--data-dir", args.data_dir,
                                   "--speed", str(args.speed), "--threads", str(args.threads), "--texts",
                                   str(args.texts if batch_size > 1 else min(args.texts, 100)),
                                   "--batch-size", str(batch_size)] + (["--onednn"] if args.onednn else []),
                                  capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
            grouped = group(parse(done.stdout + done.stderr))
            total = sum(grouped.values()) or 1.0
            lines.append(f"| {Path(export).name} | {batch_size} | "
                         + " | ".join(f"{100 * grouped.get(g, 0.0) / total:.0f} %" for g in list(GROUPS) + ["other"])
                         + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.output:
        Path(args.output).write_text(table)


if __name__ == "__main__":
    main()
