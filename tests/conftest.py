import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# runtime auto remembers its measurements: in a place of the test session's own, not the user's ~/.cache
os.environ["PADDLE_DYNAFAST_CACHE"] = tempfile.mkdtemp(prefix="paddle_dynafast_cache_")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared is not beside the repository ({SHARED} missing)")
    return SHARED


@pytest.fixture()
def tiny_hf_dir(tmp_path):
    from helpers import tiny_hf_weights, write_hf_dir

    return write_hf_dir(tmp_path / "tiny_hf", tiny_hf_weights(seed=0))


@pytest.fixture()
def tiny_model(tiny_hf_dir):
    from paddle_dynafast.model.loading import load_classifier

    loaded = load_classifier(tiny_hf_dir, num_labels=3)
    return loaded.model


@pytest.fixture()
def runtime_cache(tmp_path, monkeypatch):
    """Where runtime auto remembers its measurements, for this test alone: ``runtimes.json``."""
    monkeypatch.setenv("PADDLE_DYNAFAST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "runtimes.json"


@pytest.fixture()
def tokenizer(tmp_path):
    """The tiny BERT's tokenizer (the 99-token vocabulary of helpers.VOCAB)."""
    from helpers import tiny_hf_weights, write_hf_dir
    from paddle_dynafast.model.loading import load_tokenizer

    return load_tokenizer(write_hf_dir(tmp_path / "tokenizer", tiny_hf_weights()))


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    """The learnable toy task (label 1 iff 'good' appears), train 200 / dev 48 / test 48."""
    from helpers import write_sentiment_data

    return write_sentiment_data(tmp_path_factory.mktemp("toy") / "data", n_train=200, n_dev=48, n_test=48)


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, toy_data):
    """A tiny BERT fine-tuned on the toy task (stage 1). Do not modify: copy it first."""
    from helpers import tiny_hf_weights, write_hf_dir
    from paddle_dynafast.config import DataConfig, FinetuneConfig, TrainConfig
    from paddle_dynafast.train.finetune import finetune

    root = tmp_path_factory.mktemp("teacher")
    pretrained = write_hf_dir(root / "pretrained", tiny_hf_weights(seed=0))
    finetune(FinetuneConfig(output_dir=str(root / "teacher"), model_dir=str(pretrained),
                                  data=DataConfig(data_dir=str(toy_data), max_seq_len=16),
                                  train=TrainConfig(epochs=3, batch_size=16, lr=2e-3, seed=1)))
    return root / "teacher"


@pytest.fixture(scope="session")
def tiny_supernet_dir(tmp_path_factory, toy_data, tiny_teacher_dir):
    """Stage 2 on the tiny teacher, widths 1.0/0.75/0.5/0.25. Do not modify: copy it first."""
    from paddle_dynafast.config import DataConfig, SupernetConfig, TrainConfig
    from paddle_dynafast.train.supernet import train_supernet

    out = tmp_path_factory.mktemp("supernet") / "supernet"
    train_supernet(SupernetConfig(output_dir=str(out), teacher_dir=str(tiny_teacher_dir),
                                  data=DataConfig(data_dir=str(toy_data), max_seq_len=16),
                                  train=TrainConfig(epochs=1, batch_size=16, lr=1e-3, seed=2), importance_examples=32))
    return out


@pytest.fixture(scope="session")
def tiny_dynafast_dir(tmp_path_factory, toy_data, tiny_supernet_dir):
    """Stage 3 on the tiny supernet: shared branches at every width. Do not modify: copy it first."""
    from paddle_dynafast.train import distill
    from paddle_dynafast.config import BranchConfig, DataConfig, SelfDistillConfig, TrainConfig

    out = tmp_path_factory.mktemp("dynafast") / "dynafast"
    distill.self_distill(SelfDistillConfig(
        output_dir=str(out), model_dir=str(tiny_supernet_dir), data=DataConfig(data_dir=str(toy_data), max_seq_len=16),
        train=TrainConfig(epochs=2, batch_size=16, lr=3e-3, seed=3),
        branch=BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2)))
    return out


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory, tiny_dynafast_dir):
    """Exports of the tiny distilled model: ``{(width, exit_loop): directory}`` at widths 1.0 and 0.5, width 0.5 also
    as ONNX in fp32 and int8. Do not modify: copy them first."""
    from paddle_dynafast.config import ExportConfig
    from paddle_dynafast.runtime.export import export_model

    root = tmp_path_factory.mktemp("export")
    return {(w, exit_loop): export_model(ExportConfig(tiny_dynafast_dir, root / f"w{w}-{exit_loop}", width=w,
                                                      no_exit=not exit_loop, onnx=w == 0.5, int8=w == 0.5))
            for w in (1.0, 0.5) for exit_loop in (True, False)}


@pytest.fixture(scope="session")
def pair_data(tmp_path_factory):
    """The toy sentence-pair task (label 1 iff the second text has 'good'), .tsv with text_b, 200 / 48 / 48."""
    from helpers import write_pair_data

    return write_pair_data(tmp_path_factory.mktemp("pairs") / "data")


@pytest.fixture(scope="session")
def tiny_pair_export(tmp_path_factory, pair_data):
    """A tiny BERT fine-tuned on the pair task, branches self-distilled at width 1.0 (no supernet), exported with the
    exit loop. Do not modify: copy it first."""
    from helpers import tiny_hf_weights, write_hf_dir
    from paddle_dynafast.config import (BranchConfig, DataConfig, ExportConfig, FinetuneConfig, SelfDistillConfig,
                                        TrainConfig)
    from paddle_dynafast.runtime.export import export_model
    from paddle_dynafast.train import distill
    from paddle_dynafast.train.finetune import finetune

    root = tmp_path_factory.mktemp("pair_model")
    data = DataConfig(data_dir=str(pair_data), max_seq_len=24)
    finetune(FinetuneConfig(output_dir=str(root / "teacher"), data=data,
                            model_dir=str(write_hf_dir(root / "pretrained", tiny_hf_weights(seed=0))),
                            train=TrainConfig(epochs=4, batch_size=16, lr=2e-3, seed=1)))
    distill.self_distill(SelfDistillConfig(
        output_dir=str(root / "dynafast"), model_dir=str(root / "teacher"), data=data,
        train=TrainConfig(epochs=1, batch_size=16, lr=3e-3, seed=3),
        branch=BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2)))
    return export_model(ExportConfig(root / "dynafast", root / "export", width=1.0))


@pytest.fixture(scope="session")
def tiny_pipeline_run(tmp_path_factory, toy_data):
    """Every step of the pipeline on the toy task, the adaptive model served in int8 (calibrated on measured time):
    ``(config, result)``, the run in ``config.output_dir``. Do not modify: copy it first."""
    import paddle_dynafast as pdf
    from helpers import tiny_hf_weights, write_hf_dir
    from paddle_dynafast.config import BranchConfig, DataConfig, TrainConfig

    tmp_path = tmp_path_factory.mktemp("pipeline")
    tiny_hf_dir = write_hf_dir(tmp_path / "tiny_hf", tiny_hf_weights(seed=0))
    config = pdf.PipelineConfig(
        output_dir=str(tmp_path / "run"), data=DataConfig(data_dir=str(toy_data), max_seq_len=16),
        model_dir=str(tiny_hf_dir), finetune=TrainConfig(epochs=6, batch_size=16, lr=2e-3, seed=3),
        supernet=TrainConfig(epochs=1, batch_size=16, lr=1e-3, seed=1),
        distill=TrainConfig(epochs=1, batch_size=16, lr=3e-3, seed=1),
        branch=BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2), importance_examples=32,
        max_accuracy_drop=2.0, bench_samples=8, int8=True)
    return config, pdf.run_pipeline(config)
