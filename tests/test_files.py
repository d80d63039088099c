"""Files of a model directory are read without being led outside it: a link, a pipe or a directory under a file's
name is refused by name (checked with lstat, opened with O_NOFOLLOW), and a file that is not UTF-8 is named."""
import os
import threading

import pytest

from paddle_dynafast import files
from paddle_dynafast.errors import ArtifactError, MissingFileError


def test_a_regular_file_is_read(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\nwörd\n")
    assert files.check_regular(tmp_path / "vocab.txt") == tmp_path / "vocab.txt"
    assert files.read_bytes(tmp_path / "vocab.txt") == "[PAD]\nwörd\n".encode()
    assert files.read_text(tmp_path / "vocab.txt") == "[PAD]\nwörd\n"
    assert files.is_regular(tmp_path / "vocab.txt") and files.exists(tmp_path / "vocab.txt")


@pytest.mark.parametrize("target", ["/etc/passwd", "inside.txt", "gone.txt"])
def test_a_link_is_refused_by_name_wherever_it_points(tmp_path, target):
    (tmp_path / "inside.txt").write_text("x")
    (tmp_path / "vocab.txt").symlink_to(target)
    message = rf"vocab.txt is a symbolic link \(to {target}\): every file of .* must be a regular file inside it"
    for read in (files.check_regular, files.read_bytes, files.open_regular):
        with pytest.raises(ArtifactError, match=message):
            read(tmp_path / "vocab.txt")
    assert files.exists(tmp_path / "vocab.txt") and not files.is_regular(tmp_path / "vocab.txt")


def test_a_pipe_or_a_directory_is_refused_and_never_waited_on(tmp_path):
    os.mkfifo(tmp_path / "model.safetensors")
    (tmp_path / "config.json").mkdir()
    done = []

    def read():  # opening a pipe for reading blocks until a writer comes; ours must not
        with pytest.raises(ArtifactError, match=r"model.safetensors is not a regular file \(a pipe, socket or dev"):
            files.read_bytes(tmp_path / "model.safetensors")
        done.append(True)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    assert done == [True]
    with pytest.raises(ArtifactError, match=r"config.json is a directory: every file of"):
        files.read_bytes(tmp_path / "config.json")
    with pytest.raises(ArtifactError, match=r"config.json is a directory"):
        files.check_regular(tmp_path / "config.json")


def test_a_missing_file_and_text_that_is_not_utf8_are_named(tmp_path):
    for read in (files.check_regular, files.read_bytes):
        with pytest.raises(MissingFileError, match=r"none.txt is missing"):
            read(tmp_path / "none.txt")
    (tmp_path / "vocab.txt").write_bytes(b"[PAD]\n\x89PNG\r\n")
    with pytest.raises(ArtifactError, match=r"vocab.txt is not UTF-8 text \(byte 6: b'\\x89'\); is it damaged, or a "
                                            r"binary file\?"):
        files.read_text(tmp_path / "vocab.txt")
