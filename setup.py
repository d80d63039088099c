"""Install paddle_dynafast (`pip install -e .`); dependencies are pinned in requirements.txt."""
from setuptools import find_packages, setup

setup(
    name="paddle_dynafast",
    version="0.1.0",
    description="Width- and depth-adaptive BERT classifiers on PaddlePaddle (DynaBERT + FastBERT)",
    packages=find_packages(include=["paddle_dynafast", "paddle_dynafast.*"]),
    python_requires=">=3.10",
    install_requires=["paddlepaddle>=3.0", "paddlenlp==2.8.1", "paddleslim==2.6.0", "safetensors", "numpy<2", "tqdm"],
    entry_points={"console_scripts": ["paddle-dynafast=paddle_dynafast.console:main"]},
)
