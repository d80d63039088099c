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


def test_every_temporary_is_a_marked_directory_and_goes_away(tmp_path):
    """Each writer works inside a directory holding its marker (what the next run may remove), and leaves none."""
    seen = []
    with atomic.atomic_file(tmp_path / "out.jsonl", encoding="utf-8") as f:
        (holder,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl.")]
        seen.append(atomic.is_temporary(holder))
        f.write("line\n")
    with atomic.atomic_dir(tmp_path / "model") as tmp:
        seen.append(atomic.is_temporary(tmp.parent) and tmp.name == "model")
    with atomic.publish_files(tmp_path / "model") as tmp:
        seen.append(atomic.is_temporary(tmp))
        (tmp / "a.txt").write_text("a")
    assert seen == [True, True, True]
    assert sorted(os.listdir(tmp_path)) == ["model", "out.jsonl"] and os.listdir(tmp_path / "model") == ["a.txt"]
    assert oct((tmp_path / "model").stat().st_mode & 0o777) == "0o755"


def test_atomic_file_keeps_the_old_file_on_error_and_names_it_when_the_disk_is_full(tmp_path):
    import errno

    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(OSError, match=r"No space left on device while writing .*out.jsonl"):
        with atomic.atomic_file(path, encoding="utf-8") as f:
            f.write("half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(KeyError):
        with atomic.atomic_file(path) as f:
            raise KeyError("not ours to rename")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["out.jsonl"]


def test_a_json_file_that_is_a_link_or_nested_too_deeply_is_named(tmp_path):
    from paddle_dynafast.errors import ArtifactError

    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ArtifactError, match=r"deep.json is nested too deeply"):
        atomic.read_json(tmp_path / "deep.json")
    (tmp_path / "link.json").symlink_to(tmp_path / "deep.json")
    with pytest.raises(ArtifactError, match=r"link.json is a symbolic link"):
        atomic.read_json(tmp_path / "link.json")
