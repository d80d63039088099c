"""``paddle-dynafast bench``: accuracy, FLOPs, latency and throughput of exported models, interleaved
(:func:`paddle_dynafast.runtime.bench.run_bench`); or with ``--choose DIR`` every runtime that can run one export
timed, and the fastest remembered for ``--runtime auto`` (:func:`paddle_dynafast.runtime.choose.choose`).

Example::

    paddle-dynafast bench --system full=runs/export-full --system adaptive=runs/export-w0.5@0.3 \\
        --data-dir ../shared/data/sst2 --output runs/bench
"""
from __future__ import annotations

import argparse

from ..config import BenchConfig, BenchSystem, default
from ..data.readers import SPLITS
from ..errors import ConfigError
from ..model.exit import check_speed
from ..runtime import choose
from ..runtime.bench import run_bench
from .common import add_overwrite_arg, add_runtime_args, runtime_config


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="accuracy, FLOPs, latency and throughput of exported models, interleaved",
                              epilog="example: paddle-dynafast bench --system full=runs/export-full --system "
                                     "adaptive=runs/export-w0.5@0.3 --data-dir ../shared/data/sst2 --output runs/bench")
    p.add_argument("--system", action="append", metavar="NAME=DIR[@SPEED]",
                   help="an export directory (and a speed for one with the exit loop); the first is the reference")
    p.add_argument("--choose", metavar="DIR", default=None,
                   help="instead: time every runtime that can run the export DIR in --precision, for throughput "
                        "and for latency, and remember the fastest for --runtime auto")
    p.add_argument("--data-dir", default=None, help="folder with the split to measure (needed with --system)")
    split = default(BenchConfig, "split")
    p.add_argument("--split", choices=SPLITS, default=split, help=f"split (default {split})")
    p.add_argument("--max-examples", type=int, default=None, help="use the first N examples")
    samples, batch, rounds = (default(BenchConfig, name) for name in ("samples", "batch_size", "rounds"))
    p.add_argument("--samples", type=int, default=samples,
                   help=f"texts timed one by one for latency (default {samples})")
    p.add_argument("--batch-size", type=int, default=batch, help=f"batch size of the throughput pass (default {batch})")
    p.add_argument("--rounds", type=int, default=rounds, help=f"throughput passes per system (default {rounds})")
    add_runtime_args(p, default(BenchConfig, "runtime"))
    p.add_argument("--output", default=None, help="directory for bench.json and bench.md (needed with --system)")
    add_overwrite_arg(p)
    p.set_defaults(run=run)


def parse_system(text: str) -> BenchSystem:
    """The system of a ``--system NAME=DIR[@SPEED]``; a bad part is an error naming the flag."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ConfigError(f"--system {text!r} is not NAME=DIR or NAME=DIR@SPEED")
    directory, at, speed = rest.rpartition("@") if "@" in rest else (rest, "", "0")
    try:
        return BenchSystem(name, directory, check_speed(float(speed)))
    except (ValueError, ConfigError):
        raise ConfigError(f"--system {text!r}: the speed after @ must be a number in [0, 1], got {speed!r}") from None


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    if not args.system or not args.data_dir or not args.output:
        raise ConfigError("bench needs --system NAME=DIR[@SPEED] (one or more), --data-dir and --output; "
                          "or --choose DIR")
    return BenchConfig(systems=tuple(parse_system(text) for text in args.system), data_dir=args.data_dir,
                       output_dir=args.output, split=args.split, max_examples=args.max_examples,
                       samples=args.samples, batch_size=args.batch_size, rounds=args.rounds,
                       runtime=runtime_config(args))


def run(args: argparse.Namespace) -> int:
    if args.choose:
        return run_choose(args)
    result = run_bench(config_from_args(args), overwrite=args.overwrite)
    print(result.markdown(), end="")
    print(f"({result.results[0].name} is the reference) -> {args.output}/bench.{{json,md}}")
    return 0


def run_choose(args: argparse.Namespace) -> int:
    """``--choose DIR``: every candidate's time for throughput and for latency, the chosen one starred."""
    config = runtime_config(args)
    for objective in choose.OBJECTIVES:
        best, timings = choose.choose(args.choose, config.precision, config.threads, objective, refresh=True)
        print(f"{objective} ({'batches of 32' if objective == 'throughput' else 'one text at a time'}, "
              f"{config.threads} threads):")
        for timing in sorted(timings, key=lambda t: t.seconds_per_batch):
            cost = f"{1000 * timing.seconds_per_batch:8.2f} ms per batch" if timing.error is None else timing.error
            print(f"  {'*' if timing.candidate == choose.base_candidate(best) else ' '} "
                  f"{timing.candidate.name:<36} {cost}")
        below = dict(best.options).get("native_below")
        if below:
            print(f"  (* with the plain kernels for batches of fewer than {below} texts, where oneDNN does not pay)")
    print(f"(* chosen, remembered in {choose.cache_file()} for --runtime auto)")
    return 0
