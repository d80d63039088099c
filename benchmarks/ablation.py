"""The accuracy levers of issue #13, each trained from one teacher with the same seeds and budget, measured on dev
and test with paired-bootstrap intervals: writes ablation.json and ablation.md (benchmarks/report.py shows them).

Every lever changes the supernet stage, the branch stage, or both (`--levers a b+c`: `+` combines levers); levers
that leave the supernet alone share the baseline's. For every seed and lever: the supernet's widths against the
teacher (dev and test), the evaluation grids on dev and test (every point against the full model; PABEE patience
against entropy at equal FLOPs), the operating points chosen on dev and measured on test (the accuracy budget of
0.5 points at confidence 0.9, the best dev accuracy with >= 3x and >= 5x fewer FLOPs), and each lever against the
baseline of its seed on the same test sentences (McNemar's test, paired intervals). Finished stages and evaluations
are skipped, so an interrupted ablation continues where it stopped; `--plan` prints the runs and an estimate of
their time without training anything. Separate calls (one lever or seed each, say, run side by side) share the
output directory; `--report` writes the tables of everything measured there. The steps live in the package
benchmarks/ablation/ (levers, runs, plan, train, measure, paired, adopt, report, cli); this script runs it.

    .venv/bin/python benchmarks/ablation.py --teacher runs/sst2/teacher --data ../shared/data/sst2 \\
        --output runs/sst2-ablation --seeds 42 43 44 --adopt-baseline runs/sst2 --plan
    .venv/bin/python benchmarks/ablation.py --teacher runs/sst2/teacher --data ../shared/data/sst2 \\
        --output runs/sst2-ablation --seeds 42 43 44 --levers baseline logit-0.1 supernet-augment branches-mix
    .venv/bin/python benchmarks/ablation.py --teacher runs/sst2/teacher --data ../shared/data/sst2 \\
        --output runs/ablation-quick --quick      # 160 examples per split, 3 steps per stage: minutes
"""
from ablation.cli import main  # the package benchmarks/ablation/, found beside this script

if __name__ == "__main__":
    main()
