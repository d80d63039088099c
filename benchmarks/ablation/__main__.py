"""``python -m ablation`` (from ``benchmarks/``): the same as ``benchmarks/ablation.py``."""
from .cli import main

main()
