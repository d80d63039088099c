"""What ``MKL_DEBUG_CPU_TYPE=5`` buys on this CPU: a BERT-sized matrix product in Paddle dygraph, with the variable
unset and set, each in its own child process (MKL reads it when it loads), rounds interleaved, medians reported.

    .venv/bin/python benchmarks/mkl_amd.py --rounds 5

The console sets the variable on AMD CPUs with AVX2 (``paddle_dynafast/console.py``); this script says whether
that is worth it on the machine it runs on. On an Intel CPU the two columns should be the same.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = """
import json, sys, time
import paddle
paddle.set_device("cpu")
m, k, n, repeats = map(int, sys.argv[1:5])
a, b = paddle.randn([m, k]), paddle.randn([k, n])
paddle.matmul(a, b)  # warm up
times = []
for _ in range(repeats):
    start = time.perf_counter()
    paddle.matmul(a, b).numpy()
    times.append(time.perf_counter() - start)
print(json.dumps(sorted(times)[len(times) // 2]))
"""


def run(cpu_type: str, shape, repeats: int, threads: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "MKL_DEBUG_CPU_TYPE"}
    if cpu_type:
        env["MKL_DEBUG_CPU_TYPE"] = cpu_type
    env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run([sys.executable, "-c", CHILD, *map(str, shape), str(repeats)], env=env,
                          capture_output=True, text=True, check=True, timeout=600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[2048, 384, 1536], metavar=("M", "K", "N"),
                        help="[M, K] x [K, N]; default: a batch of 32 x 64 tokens through MiniLM's FFN")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    times = {"unset": [], "5": []}
    for _ in range(args.rounds):
        for cpu_type in times:
            times[cpu_type].append(run("" if cpu_type == "unset" else cpu_type, args.shape, args.repeats,
                                       args.threads))
    unset, five = statistics.median(times["unset"]), statistics.median(times["5"])
    print(f"matmul {args.shape}, {args.threads} thread(s), median of {args.rounds} rounds")
    print(f"| MKL_DEBUG_CPU_TYPE | ms |\n| --- | --- |\n| unset | {unset * 1e3:.1f} |\n| 5 | {five * 1e3:.1f} |")
    print(f"speed-up with 5: {unset / five:.2f}x")


if __name__ == "__main__":
    main()
