"""Install paddle_dynafast: the exact tested versions are pinned in requirements.txt (``pip install -c requirements.txt``
takes them as constraints).

    pip install -c requirements.txt ".[train,serve]"   # everything: training, export, predict, bench, serve
    pip install -c requirements.txt ".[serve]"         # a deployment: predict, bench and serve an export (Paddle
                                                       # Inference or ONNX Runtime), without PaddleNLP, PaddleSlim,
                                                       # paddle2onnx or OpenCV
"""
from setuptools import find_packages, setup

SERVE = ["onnxruntime", "fastapi", "uvicorn", "httptools", "uvloop", "orjson", "prometheus-client"]
TRAIN = ["paddlenlp==2.8.1", "paddleslim==2.6.0", "paddle2onnx", "onnxruntime", "visualdl", "matplotlib",
         # paddlenlp 2.8.1 fails to import with newer ones (requirements.txt says why)
         "huggingface-hub<0.26", "aistudio-sdk==0.2.6", "datasets<3", "decorator"]

setup(
    name="paddle_dynafast",
    version="0.1.0",
    description="Width- and depth-adaptive BERT classifiers on PaddlePaddle (DynaBERT + FastBERT)",
    packages=find_packages(include=["paddle_dynafast", "paddle_dynafast.*"]),
    python_requires=">=3.10",
    install_requires=["paddlepaddle>=3.0", "numpy<2", "safetensors", "tqdm", "tokenizers"],
    extras_require={"serve": SERVE, "train": TRAIN, "all": sorted(set(SERVE + TRAIN))},
    entry_points={"console_scripts": ["paddle-dynafast=paddle_dynafast.console:main"]},
)
