"""The stage skeleton: one registry of stages, refusal to mix runs, one backward per width, the teacher's labels."""
import argparse

import paddle
import pytest

from paddle_dynafast import data
from paddle_dynafast.config import DataConfig, FinetuneConfig, TrainConfig, default
from paddle_dynafast.errors import ArtifactError, DataError
from paddle_dynafast.model.stage_info import StageInfo
from paddle_dynafast.train import STAGES, stage


def test_the_registry_gives_every_stage_what_the_pipeline_and_cli_need():
    assert [s.name for s in STAGES] == ["finetune", "supernet", "distill"]
    assert len({s.run_dir for s in STAGES}) == len(STAGES)
    for s in STAGES:
        assert issubclass(s, stage.Stage) and s.help and s.example.startswith(f"paddle-dynafast {s.name} ")
        parser = argparse.ArgumentParser()
        s.add_arguments(parser)  # the stage's own flags parse on top of the common ones
        assert isinstance(default(s.config_class, "train"), TrainConfig)


def test_a_stage_refuses_the_wrong_config():
    with pytest.raises(TypeError, match="FinetuneStage takes a FinetuneConfig, got DataConfig"):
        STAGES[0](DataConfig("d"))


def test_check_resumable(tmp_path, tiny_teacher_dir):
    config = StageInfo.read(tiny_teacher_dir)
    same = FinetuneConfig(**{**_kwargs(config.config), "output_dir": str(tmp_path)})
    stage.check_resumable(config, "finetune", same)  # only output_dir differs
    with pytest.raises(ArtifactError, match="holds stage 'finetune', not 'supernet'"):
        stage.check_resumable(config, "supernet", same)
    other = FinetuneConfig(**{**_kwargs(config.config), "train": TrainConfig(lr=1.0, seed=9)})
    with pytest.raises(ArtifactError, match=r"another configuration \(train.batch_size, train.lr, train.seed differ\)"):
        stage.check_resumable(config, "finetune", other)
    stage.check_resumable(StageInfo.read(tmp_path), "finetune", other)  # nothing there yet


def _kwargs(config):
    from paddle_dynafast.config import from_dict

    rebuilt = from_dict(FinetuneConfig, config)
    return {f: getattr(rebuilt, f) for f in rebuilt.__dataclass_fields__}


def test_backward_per_width_adds_the_gradients_of_every_width():
    weight = paddle.create_parameter([3], "float32", default_initializer=paddle.nn.initializer.Constant(1.0))
    x = paddle.to_tensor([1.0, 2.0, 3.0])

    def objective(x, width):
        return (weight * x * width).sum()

    total = stage.backward_per_width(objective, (1.0, 0.5), x)
    assert total.stop_gradient and float(total) == pytest.approx(6.0 + 3.0)
    assert weight.grad.numpy().tolist() == [1.5, 3.0, 4.5]


def test_teacher_labels(tiny_teacher_dir, tiny_hf_dir):
    examples = [data.Example("t", None, label, f"f:{i}") for i, label in enumerate(["0", "1", "1"])]
    assert stage.teacher_labels(tiny_teacher_dir, examples, 2) == ["0", "1"]
    with pytest.raises(ArtifactError, match=r"classifies 3 labels, but its labels are \['0', '1'\]"):
        stage.teacher_labels(tiny_teacher_dir, examples, 3)
    with pytest.raises(DataError, match=r"training labels \['7'\] are not among the teacher's labels"):
        stage.teacher_labels(tiny_teacher_dir, examples + [data.Example("t", None, "7", "f:9")], 2)
    assert stage.teacher_labels(tiny_hf_dir, examples, 2) == ["0", "1"]  # not ours: the training split's labels
