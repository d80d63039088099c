"""Outputs a user keeps are written atomically."""
import os

import pytest

from paddle_dynafast import atomic


def test_write_json_replaces_whole_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "m.json"
    atomic.write_json(path, {"a": 1})
    atomic.write_json(path, {"a": 2, "text": "好"})
    assert atomic.read_json(path) == {"a": 2, "text": "好"}
    assert os.listdir(path.parent) == ["m.json"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(TypeError):
        atomic.write_json(path, {"bad": object()})
    assert atomic.read_json(path) == {"a": 2, "text": "好"} and os.listdir(path.parent) == ["m.json"]
    with pytest.raises(FileNotFoundError, match="missing"):
        atomic.read_json(tmp_path / "none.json")


def test_atomic_dir_keeps_the_old_directory_on_error(tmp_path):
    target = tmp_path / "model"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "w.bin").write_text("one")
    with pytest.raises(RuntimeError):
        with atomic.atomic_dir(target) as tmp:
            (tmp / "w.bin").write_text("half")
            raise RuntimeError("crash while writing")
    assert (target / "w.bin").read_text() == "one"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "w.bin").write_text("two")
    assert (target / "w.bin").read_text() == "two" and os.listdir(tmp_path) == ["model"]


def test_publish_files(tmp_path):
    (tmp_path / "keep.txt").write_text("kept")
    with atomic.publish_files(tmp_path) as tmp:
        (tmp / "a.txt").write_text("new")
    with pytest.raises(RuntimeError):
        with atomic.publish_files(tmp_path) as tmp:
            (tmp / "a.txt").write_text("broken")
            raise RuntimeError
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "keep.txt"] and (tmp_path / "a.txt").read_text() == "new"
