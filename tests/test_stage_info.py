"""The typed reader of stage.json: what a directory says about itself, and every fallback in one place."""
import json
import shutil

import pytest

from paddle_dynafast.config import DataConfig, FinetuneConfig, TrainConfig, to_dict
from paddle_dynafast.model.stage_info import StageInfo, normalize_config


def test_a_stage_directory(tiny_teacher_dir, tiny_supernet_dir, tiny_dynafast_dir):
    teacher = StageInfo.read(tiny_teacher_dir)
    assert (teacher.stage, teacher.complete, teacher.labels, teacher.max_seq_len, teacher.widths) == (
        "finetune", True, ("0", "1"), 16, (1.0,))
    assert teacher.split_seed == 42 and teacher.versions["paddle_dynafast"]
    assert StageInfo.read(tiny_supernet_dir).widths == (1.0, 0.75, 0.5, 0.25)
    assert StageInfo.read(tiny_dynafast_dir).widths == (1.0, 0.75, 0.5, 0.25)
    data = StageInfo.read(tiny_teacher_dir).data_config("elsewhere", max_examples=5)
    assert data == DataConfig("elsewhere", max_seq_len=16, max_examples=5, split_seed=42)


def test_a_directory_that_is_not_ours_gets_the_defaults(tiny_hf_dir):
    info = StageInfo.read(tiny_hf_dir)
    assert (info.stage, info.complete, info.labels, info.widths) == (None, False, None, (1.0,))
    assert info.max_seq_len == DataConfig("d").max_seq_len and info.split_seed == DataConfig("d").split_seed
    assert info.labels_or_numbers(3) == ("0", "1", "2")


def test_a_directory_written_before_the_split_seed_split_with_the_training_seed(tmp_path):
    config = to_dict(FinetuneConfig(output_dir="o", model_dir="m", data=DataConfig("d"), train=TrainConfig(seed=7)))
    del config["data"]["split_seed"]
    (tmp_path / "stage.json").write_text(json.dumps({"stage": "finetune", "complete": True, "config": config,
                                                      "labels": ["a", "b"]}))
    info = StageInfo.read(tmp_path)
    assert info.split_seed == 7
    assert normalize_config(config, FinetuneConfig)["data"]["split_seed"] == 7
    now = FinetuneConfig(output_dir="elsewhere", model_dir="m", data=DataConfig("d", split_seed=7),
                         train=TrainConfig(seed=7))
    assert info.is_complete_with("finetune", now) and not info.is_complete_with("supernet", now)
    assert not info.is_complete_with("finetune", FinetuneConfig(output_dir="o", model_dir="m", data=DataConfig("d"),
                                                                train=TrainConfig(seed=7)))
    with pytest.raises(ValueError, match=r"FinetuneConfig has no field\(s\) \['nonsense'\]"):
        normalize_config({**config, "nonsense": 1}, FinetuneConfig)


def test_the_teacher_is_found_through_the_stage_directories(tiny_teacher_dir, tiny_supernet_dir, tiny_dynafast_dir,
                                                            tmp_path):
    assert StageInfo.read(tiny_teacher_dir).teacher() == tiny_teacher_dir
    assert StageInfo.read(tiny_supernet_dir).teacher() == tiny_teacher_dir
    assert StageInfo.read(tiny_dynafast_dir).teacher() == tiny_teacher_dir
    assert StageInfo.read(tmp_path).teacher() is None  # not a directory of ours
    moved = shutil.copytree(tiny_dynafast_dir, tmp_path / "moved")
    stage = json.loads((moved / "stage.json").read_text())
    stage["config"]["model_dir"] = str(tmp_path / "gone")
    (moved / "stage.json").write_text(json.dumps(stage))
    assert StageInfo.read(moved).teacher() is None  # the chain is broken: said, not guessed


def test_the_training_holdout_is_read_back_for_calibration(tmp_path):
    (tmp_path / "stage.json").write_text(json.dumps({"stage": "finetune", "complete": True, "config": {
        "data": {"data_dir": "d", "max_seq_len": 32, "split_seed": 7, "holdout": 500}}}))
    info = StageInfo.read(tmp_path)
    assert info.holdout == 500 and info.data_config("e") == DataConfig("e", max_seq_len=32, split_seed=7, holdout=500)


@pytest.mark.parametrize("content", ["[]", '{"config": [1]}', '{"labels": 3}', '{"config": {"data": '
                                                                               '{"max_seq_len": "long"}}}'])
def test_a_malformed_stage_json_is_named(tmp_path, content):
    from paddle_dynafast.errors import ArtifactError

    (tmp_path / "stage.json").write_text(content)
    with pytest.raises(ArtifactError, match=r"stage.json is malformed: "):
        StageInfo.read(tmp_path)
    (tmp_path / "stage.json").unlink()
    (tmp_path / "stage.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(ArtifactError, match=r"stage.json is a symbolic link"):
        StageInfo.read(tmp_path)
