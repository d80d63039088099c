"""What oneDNN does per call of an exported model in Paddle Inference: primitive creations (oneDNN's own cache missed:
a kernel is compiled; or hit: a descriptor is built and looked up) against executions, per primitive kind, with the
time oneDNN reports for each, and the distinct shapes it saw.

Each (export, speed, setting) runs in a child process with ``ONEDNN_VERBOSE=2`` (creations and executions) over the
split's texts at ``--batch-size``, grouped by length as a deployment batches them; ``--passes`` passes, of which
only the last is counted (the first ones warm every cache, as a server that has run a while). The child marks each
call on the same C stream as oneDNN's lines, so every line is counted against its call. A setting is a name and
its Paddle Inference options or environment, e.g. ``--setting cap20:cache_capacity=20`` or
``--setting prim4096:env.ONEDNN_PRIMITIVE_CACHE_CAPACITY=4096``.

    .venv/bin/python benchmarks/onednn_counts.py --export ../runs/pi/export-full --export ../runs/pi/export \\
        --data-dir ../shared/data/sst2 --speed 0 --speed 0.36 --output ../runs/pi-counts

``--time`` instead times the settings (no verbose output): each (export, speed, kernels, setting) alone in a fresh
process, the processes taking turns round after round, throughput at ``--batch-size`` over the texts and median
latency at batch 1 over the first ``--samples`` texts, each shape seen once before timing; medians over rounds.

    .venv/bin/python benchmarks/onednn_counts.py --time --export ../runs/pi/export-full --export ../runs/pi/export \\
        --data-dir ../shared/data/sst2 --speed 0.36 --kernels native --kernels onednn --rounds 3 \\
        --output ../runs/pi-counts
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

MARK = "@@call"
"""The child's marker line before each call: ``@@call <pass> <index> <batch> <seq>``; ``@@done <seconds>`` after."""


def _libc_print(text: str) -> None:
    """Print on C's stdout (the stream oneDNN writes on), flushed, so the lines keep their order."""
    libc = ctypes.CDLL(None)
    libc.printf(b"%s\n", text.encode())
    libc.fflush(None)


def _parse_setting(text: str):
    """``name:key=value,...`` into ``(name, options, env)``; ``env.X=v`` sets an environment variable."""
    name, _, rest = text.partition(":")
    options, env = {}, {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key.startswith("env."):
            env[key[4:]] = value
        else:
            options[key] = json.loads(value) if value not in ("true", "false") else value == "true"
    return name, options, env


def _prepared(args):
    from paddle_dynafast import data
    from paddle_dynafast.model.loading import load_tokenizer

    directory = Path(args.export[0])
    info = json.loads((directory / "export.json").read_text())
    tokenizer = load_tokenizer(directory)
    texts = data.load_splits(args.data_dir)[args.split][:args.texts]
    features = data.encode(texts, tokenizer, info["max_seq_len"], quiet=True)
    return features, tokenizer.pad_token_id


def _open(args):
    from paddle_dynafast.runtime.paddle_inference import PaddleInferenceRuntime

    _, options, _ = _parse_setting(args.setting[0])
    return PaddleInferenceRuntime(args.export[0], threads=args.threads, onednn=args.kernels[0] == "onednn",
                                  **options)


def child_counts(args) -> None:
    from paddle_dynafast.runtime.bench import batches

    features, pad = _prepared(args)
    runtime = _open(args)
    prepared = batches(features, pad, args.batch_size)
    for p in range(args.passes):
        for i, (ids, types, _) in enumerate(prepared):
            _libc_print(f"{MARK} {p} {i} {ids.shape[0]} {ids.shape[1]}")
            started = time.perf_counter()
            _, exit_layer = runtime.run_batch(ids, types, args.speed[0])
            _libc_print(f"@@done {time.perf_counter() - started:.6f} {' '.join(map(str, exit_layer.tolist()))}")


def child_time(args) -> None:
    import numpy as np
    from paddle_dynafast.runtime.bench import batches

    features, pad = _prepared(args)
    runtime = _open(args)
    full = batches(features, pad, args.batch_size)
    singles = batches(features[:args.samples], pad, 1)
    speed = args.speed[0]
    for ids, types, _ in full + singles:  # every shape once, untimed
        runtime.run_batch(ids, types, speed)
    started = time.perf_counter()
    for ids, types, _ in full:
        runtime.run_batch(ids, types, speed)
    throughput = len(features) / (time.perf_counter() - started)
    latency = []
    for ids, types, _ in singles:
        started = time.perf_counter()
        runtime.run_batch(ids, types, speed)
        latency.append(time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"throughput": throughput, "latency_ms": 1000 * float(np.median(latency)), "peak_mb": peak_mb}))


def count(lines):
    """Per-call counts of the counted pass: ``{kind: {"create_miss", "create_hit", "exec", "*_ms"}}`` summed over
    calls, the number of calls, the distinct (kind, shape) pairs executed, wall seconds, exit layers and
    ``{(kind, implementation, shape): [executions, ms]}``."""
    per_kind = defaultdict(lambda: defaultdict(float))
    by_shape = defaultdict(lambda: [0, 0.0])  # (kind, implementation, shape) -> [executions, ms]
    shapes, calls, wall, exits, current = set(), 0, 0.0, [], None
    last_pass = None
    for line in lines:
        if line.startswith(MARK):
            current = line.split()[1:]
            last_pass = current[0]
    current = None  # lines before the first call (the predictor's own set-up) are not counted
    for line in lines:
        if line.startswith(MARK):
            current = line.split()[1:]
            if current[0] == last_pass:
                calls += 1
            continue
        if current is None or current[0] != last_pass:
            continue
        if line.startswith("@@done"):
            parts = line.split()
            wall += float(parts[1])
            exits.extend(int(x) for x in parts[2:])
            continue
        if not line.startswith("onednn_verbose,v1,primitive,"):
            continue
        fields = line.split(",")
        action, kind = fields[3], fields[5]
        try:
            ms = float(fields[-1])
        except ValueError:
            continue
        key = {"create:cache_miss": "create_miss", "create:cache_hit": "create_hit", "exec": "exec"}.get(action)
        if key is None:
            continue
        per_kind[kind][key] += 1
        per_kind[kind][key + "_ms"] += ms
        if key == "exec":
            shapes.add((kind, fields[-2]))
            by_shape[(kind, fields[6], fields[-2])][0] += 1
            by_shape[(kind, fields[6], fields[-2])][1] += ms
    return {k: dict(v) for k, v in per_kind.items()}, calls, len(shapes), wall, exits, by_shape


def run_counts(args) -> None:
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    rows, results = [], []
    for export in args.export:
        exit_loop = json.loads((Path(export) / "export.json").read_text())["exit_loop"]
        for speed in (args.speed if exit_loop else [0.0]):
            for setting in args.setting:
                name, _, env_extra = _parse_setting(setting)
                env = {**os.environ, **env_extra, "ONEDNN_VERBOSE": "2", "OMP_NUM_THREADS": str(args.threads)}
                command = [sys.executable, __file__, "--child", "counts", "--export", export, "--data-dir",
                           args.data_dir, "--split", args.split, "--speed", str(speed), "--setting", setting,
                           "--threads", str(args.threads), "--texts", str(args.texts), "--batch-size",
                           str(args.batch_size), "--passes", str(args.passes), "--kernels", "onednn"]
                done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=7200)
                if done.returncode != 0:
                    raise SystemExit(done.stderr[-3000:])
                lines = done.stdout.splitlines()
                tag = f"{Path(export).name}-s{speed:g}-{name}-b{args.batch_size}"
                (out / f"{tag}.verbose.txt").write_text(
                    "\n".join(l for l in lines if l.startswith(("@@", "onednn_verbose,v1,primitive,create:cache_miss"))))
                per_kind, calls, shapes, wall, exits, by_shape = count(lines)
                top = sorted(by_shape.items(), key=lambda item: -item[1][1])
                (out / f"{tag}.shapes.md").write_text(
                    f"{tag}: executions and oneDNN ms per (kind, implementation, shape) over {calls} calls\n\n"
                    "| kind | implementation | shape | executions | ms |\n| --- | --- | --- | --- | --- |\n"
                    + "".join(f"| {k} | {impl} | {shape} | {n} | {ms:.2f} |\n" for (k, impl, shape), (n, ms) in top))
                total = {k: sum(v.get(k, 0.0) for v in per_kind.values())
                         for k in ("create_miss", "create_hit", "exec", "create_miss_ms", "create_hit_ms", "exec_ms")}
                mean_exit = sum(exits) / len(exits) if exits else float("nan")
                result = {"export": export, "speed": speed, "setting": setting, "batch_size": args.batch_size,
                          "calls": calls, "distinct_exec_shapes": shapes, "wall_s": wall, "mean_exit_layer": mean_exit,
                          "per_call": {k: v / max(calls, 1) for k, v in total.items()},
                          "per_kind_per_call": {kind: {k: v / max(calls, 1) for k, v in d.items()}
                                                for kind, d in per_kind.items()}}
                results.append(result)
                c = result["per_call"]
                rows.append(f"| {Path(export).name} | {speed:g} | {name} | {mean_exit:.2f} | {c['create_miss']:.1f} | "
                            f"{c['create_hit']:.1f} | {c['exec']:.1f} | "
                            f"{result['per_kind_per_call'].get('reorder', {}).get('exec', 0.0):.1f} | "
                            f"{shapes} | {c['create_miss_ms']:.2f} | {c['exec_ms']:.2f} | "
                            f"{1000 * wall / max(calls, 1):.2f} |")
                print(rows[-1], flush=True)
    header = [f"oneDNN per call (Paddle Inference, {args.threads} threads, {args.split} split, {args.texts} texts at "
              f"batch {args.batch_size}, last of {args.passes} passes counted; verbose on, so times are inflated)", "",
              "| export | speed | setting | mean exit layer | creations (cache miss) | creations (cache hit) | "
              "executions | reorder executions | distinct exec shapes | miss ms | exec ms | wall ms |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    table = "\n".join(header + rows) + "\n"
    print(table)
    (out / f"counts-b{args.batch_size}.md").write_text(table)
    (out / f"counts-b{args.batch_size}.json").write_text(json.dumps(results, indent=1))


def run_time(args) -> None:
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    systems = []
    for export in args.export:
        exit_loop = json.loads((Path(export) / "export.json").read_text())["exit_loop"]
        for speed in (args.speed if exit_loop else [0.0]):
            for kernels in args.kernels:
                for setting in (args.setting if kernels == "onednn" else args.setting[:1]):
                    systems.append((export, speed, kernels, setting))
    measured = defaultdict(list)
    for r in range(args.rounds):
        for system in systems:
            export, speed, kernels, setting = system
            _, _, env_extra = _parse_setting(setting)
            env = {**os.environ, **env_extra, "OMP_NUM_THREADS": str(args.threads)}
            command = [sys.executable, __file__, "--child", "time", "--export", export, "--data-dir", args.data_dir,
                       "--split", args.split, "--speed", str(speed), "--setting", setting, "--threads",
                       str(args.threads), "--texts", str(args.texts), "--batch-size", str(args.batch_size),
                       "--samples", str(args.samples), "--kernels", kernels]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=7200)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
            measured[system].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(r, system, measured[system][-1], flush=True)
    rows = []
    for system in systems:
        export, speed, kernels, setting = system
        runs = measured[system]
        rows.append({"export": export, "speed": speed, "kernels": kernels, "setting": setting,
                     "throughput": statistics.median(x["throughput"] for x in runs),
                     "latency_ms": statistics.median(x["latency_ms"] for x in runs),
                     "peak_mb": max(x["peak_mb"] for x in runs), "rounds": runs})
    lines = [f"Paddle Inference, {args.threads} threads, {args.split} split ({args.texts} texts), throughput at batch "
             f"{args.batch_size}, latency at batch 1 over {args.samples} texts; medians of {args.rounds} rounds, each "
             f"system alone in its process, interleaved; MKL_DEBUG_CPU_TYPE={os.environ.get('MKL_DEBUG_CPU_TYPE', '')}",
             "", "| export | speed | kernels | setting | texts/s | latency ms | peak MB |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {Path(r['export']).name} | {r['speed']:g} | {r['kernels']} | {_parse_setting(r['setting'])[0]} | "
              f"{r['throughput']:.1f} | {r['latency_ms']:.2f} | {r['peak_mb']:.0f} |" for r in rows]
    table = "\n".join(lines) + "\n"
    print(table)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"time-{stamp}.md").write_text(table)
    (out / f"time-{stamp}.json").write_text(json.dumps(rows, indent=1))


def main() -> None:
    from paddle_dynafast.mkl import mkl_avx2_on_amd

    mkl_avx2_on_amd()  # as the command line does, before any child loads Paddle
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", action="append", required=True, help="an export directory (repeat)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--speed", type=float, action="append", default=None, help="exit speed (repeat; default 0)")
    parser.add_argument("--setting", action="append", default=None,
                        help="name:option=value,env.VAR=value (repeat; default: 'default:' with no options)")
    parser.add_argument("--kernels", action="append", default=None, choices=("native", "onednn"),
                        help="with --time (repeat; default onednn)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=100000, help="the split's first N texts (default all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--passes", type=int, default=2, help="passes over the texts; the last is counted")
    parser.add_argument("--samples", type=int, default=100, help="with --time: texts timed one by one")
    parser.add_argument("--rounds", type=int, default=3, help="with --time")
    parser.add_argument("--time", action="store_true", help="time the settings instead of counting")
    parser.add_argument("--output", default="onednn-counts")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.speed = args.speed or [0.0]
    args.setting = args.setting or ["default:"]
    args.kernels = args.kernels or ["onednn"]
    if args.child == "counts":
        return child_counts(args)
    if args.child == "time":
        return child_time(args)
    run_time(args) if args.time else run_counts(args)


if __name__ == "__main__":
    main()
