"""What padding costs a served batch: texts/s of an export on batches of ``--per-batch`` texts in arrival order, each
one runtime call padded to its longest text (the server before length groups), the same batches cut by
``batcher.length_groups`` (the server now), every text alone, and the offline reference (batches of 32 grouped by
length over the whole split). One process, interleaved rounds, medians.

    PYTHONPATH=. .venv/bin/python benchmarks/batch_padding.py --model runs/sst2/export --data-dir ../shared/data/sst2 \\
        --runtime onnxruntime --threads 2 --speed 0
"""
import argparse
import statistics
import time

import numpy as np

from paddle_dynafast import data
from paddle_dynafast.runtime.batcher import length_groups
from paddle_dynafast.runtime.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speed", type=float, default=0.0)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--per-batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    predictor = Predictor(args.model, runtime=args.runtime, threads=args.threads,
                          **({"precision": args.precision} if args.precision != "fp32" else {}))
    texts = [e.text_a for e in data.read_examples(data.find_split(args.data_dir, "test"))][:args.texts]
    features, _ = predictor.encode(texts)
    pad = predictor.tokenizer.pad_token_id

    def run(group):
        width = max(len(f.input_ids) for f in group)
        ids = np.full((len(group), width), pad, dtype="int64")  # [batch, seq]
        for row, f in enumerate(group):
            ids[row, :len(f.input_ids)] = f.input_ids
        predictor.run_batch(ids, np.zeros_like(ids), args.speed)

    arrived = [features[i:i + args.per_batch] for i in range(0, len(features), args.per_batch)]
    cut = [[[batch[i] for i in rows] for rows in length_groups(np.array([len(f.input_ids) for f in batch]), 32)]
           for batch in arrived]
    by_length = sorted(features, key=lambda f: len(f.input_ids))
    plans = {f"{args.per_batch} per call, padded": [[b] for b in arrived],
             f"{args.per_batch} cut by length_groups": cut,
             "one by one": [[[f]] for f in features],
             "offline: 32 grouped by length": [[by_length[i:i + 32]] for i in range(0, len(by_length), 32)]}

    def texts_per_second(plan):
        started = time.perf_counter()
        for calls in plan:
            for group in calls:
                run(group)
        return len(features) / (time.perf_counter() - started)

    for plan in plans.values():  # warm-up
        texts_per_second(plan)
    results = {name: [] for name in plans}
    for _ in range(args.rounds):
        for name, plan in plans.items():
            results[name].append(texts_per_second(plan))
    tokens = sum(len(f.input_ids) for f in features)
    padded = sum(max(len(f.input_ids) for f in b) * len(b) for b in arrived)
    print(f"{args.model}, {args.runtime} {args.precision}, {args.threads} thread(s), speed {args.speed:g}: "
          f"{len(features)} texts, {args.per_batch} per call pad to {padded / tokens:.2f}x their tokens; "
          f"length_groups makes {np.mean([len(c) for c in cut]):.2f} calls of them")
    print("| batches | texts/s (median) | rounds |\n| --- | --- | --- |")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} |")


if __name__ == "__main__":
    main()
