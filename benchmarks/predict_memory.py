"""Peak memory and wall time of ``paddle-dynafast predict`` on inputs of growing length: streaming keeps the peak flat.

Each run is a fresh child process (its peak RSS from ``getrusage``); inputs are random texts of the tiny test
vocabulary (3 to 14 words). Give several source trees to compare versions (each run with ``PYTHONPATH`` set to it)::

    python benchmarks/predict_memory.py --model runs/export --trees /work/main . --lines 10000 100000 \\
        -- --threads 1 --runtime onnxruntime --batch-size 64
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

WORDS = ["good", "bad"] + [f"w{i}" for i in range(92)]


def write_input(path: Path, lines: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):
            f.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) + "\n")
    return path


def measure(tree: str, model: str, source: Path, flags: list) -> tuple:
    """``(peak MB, seconds)`` of one predict run with the package of ``tree``, its lines written to a file beside
    ``source``."""
    script = ("import resource, subprocess, sys, time; t = time.perf_counter(); done = subprocess.run(sys.argv[1:], "
              "stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
              "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
              "time.perf_counter() - t); sys.stderr.write(done.stderr[-2000:] if done.returncode else '')")
    source.with_suffix(".out").unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-c", script, sys.executable, "-m", "paddle_dynafast", "predict", "--model",
                           model, "--input", str(source), "--output", str(source.with_suffix(".out")), *flags],
                          capture_output=True, text=True, cwd=source.parent,  # not a tree: -m imports from cwd first
                          env={**os.environ, "PYTHONPATH": os.path.abspath(tree)})
    code, peak, seconds = done.stdout.split()
    if code != "0":
        raise SystemExit(f"{tree}: predict failed: {done.stderr}")
    return int(peak) / 1024, float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an export directory")
    parser.add_argument("--trees", nargs="+", default=["."], help="source trees to compare (PYTHONPATH of each run)")
    parser.add_argument("--lines", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("flags", nargs=argparse.REMAINDER, help="after --: flags of predict")
    args = parser.parse_args()
    flags = [f for f in args.flags if f != "--"]
    print("| tree | lines | peak RSS (MB) | wall (s) |\n|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        inputs = {n: write_input(Path(scratch) / f"in{n}.txt", n) for n in args.lines}
        for tree in args.trees:
            for n in args.lines:
                peak, seconds = measure(tree, args.model, inputs[n], flags)
                print(f"| {tree} | {n} | {peak:.0f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
