"""The manifest of an export directory: the sha256 of every file, checked before anything is read (a file missing,
altered or not listed is named), and the HMAC signature that refuses deliberate edits. On a directory of plain files
first, then on the tiny exports."""
import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest

from helpers import copy_export, edit_export_file, texts_of
from paddle_dynafast.config import ExportConfig
from paddle_dynafast.errors import ArtifactError, ConfigError, MissingFileError
from paddle_dynafast.runtime import export
from paddle_dynafast.runtime.manifest import MANIFEST_FILE, read_sign_key, sha256, verify, write_manifest
from paddle_dynafast.runtime.predictor import Predictor

KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture()
def directory(tmp_path) -> Path:
    """Two plain files and their manifest."""
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    (folder / "b.bin").write_bytes(bytes(range(256)) * 5000)  # over one read block of 1 MiB
    write_manifest(folder)
    return folder


def test_the_manifest_holds_every_files_sha256_and_the_versions(directory):
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    assert manifest["files"] == {"a.txt": hashlib.sha256(b"alpha").hexdigest(),
                                 "b.bin": hashlib.sha256(bytes(range(256)) * 5000).hexdigest()}
    assert sha256(directory / "b.bin") == manifest["files"]["b.bin"] and "paddlepaddle" in json.dumps(manifest["versions"])
    assert "signature" not in manifest
    verify(directory, required=("a.txt",))
    with pytest.raises(ArtifactError, match=r"manifest.json does not list export.json: not an exported model"):
        verify(directory, required=("export.json",))


def test_a_directory_inside_is_refused(directory):
    (directory / "sub").mkdir()
    with pytest.raises(ArtifactError, match=r"files holds \['sub'\]: an export directory holds files only"):
        write_manifest(directory)


def test_a_signature_is_checked_with_the_key(directory, caplog):
    write_manifest(directory, sign_key=KEY)
    signature = json.loads((directory / MANIFEST_FILE).read_text())["signature"]
    assert signature["algorithm"] == "hmac-sha256" and len(signature["hmac"]) == 64
    verify(directory, sign_key=KEY)
    with pytest.raises(ArtifactError, match="the signature does not match: the export was edited after it was signed"):
        verify(directory, sign_key=KEY[::-1])
    with caplog.at_level(logging.INFO, logger="paddle_dynafast.runtime.manifest"):
        verify(directory)  # no key: the hashes are checked, the signature cannot be
    assert "is signed; pass its key (--sign-key-file) to check the signature" in caplog.text
    write_manifest(directory)
    with pytest.raises(ArtifactError, match="is not signed, and a sign key was given: refusing an unsigned export"):
        verify(directory, sign_key=KEY)


def test_the_sign_key_file(tmp_path):
    (tmp_path / "key").write_bytes(KEY + b"\r\n")
    assert read_sign_key(tmp_path / "key") == KEY  # the final line end is not part of the key
    with pytest.raises(MissingFileError, match=r"sign key file .*nothing does not exist"):
        read_sign_key(tmp_path / "nothing")
    (tmp_path / "short").write_bytes(b"fifteen bytes!!")
    with pytest.raises(ConfigError, match=r"short holds 15 bytes; use at least 16 random ones"):
        read_sign_key(tmp_path / "short")


def test_altered_or_missing_files_are_named(tmp_path, tiny_exports):
    copy = shutil.copytree(tiny_exports[(1.0, True)], tmp_path / "copy")
    with open(copy / "model.pdiparams", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match=r"model.pdiparams was altered"):
        Predictor(copy)
    other = shutil.copytree(tiny_exports[(1.0, True)], tmp_path / "other")
    (other / "vocab.txt").unlink()
    with pytest.raises(ArtifactError, match=r"vocab.txt is missing"):
        verify(other)
    with pytest.raises(ArtifactError, match="has no manifest.json"):
        Predictor(tmp_path)


def test_the_manifest_lists_every_file_and_only_those(tmp_path, tiny_exports):
    extra = copy_export(tiny_exports, tmp_path, name="extra")
    (extra / "notes.txt").write_text("x")
    with pytest.raises(ArtifactError, match=r"extra/notes.txt is not listed in manifest.json"):
        verify(extra)
    for name, change, message in (
            ("empty", lambda m: m.update(files={}), r"empty/manifest.json lists no files"),
            ("none", lambda m: m.pop("files"), r"none/manifest.json lists no files"),
            ("bad", lambda m: m.update(files={"../x": "0" * 64}), r"lists '../x', which is not a file name"),
            ("hash", lambda m: m["files"].update({"vocab.txt": "abc"}), r"gives vocab.txt the sha256 'abc'")):
        directory = copy_export(tiny_exports, tmp_path, name=name)
        manifest = json.loads((directory / "manifest.json").read_text())
        change(manifest)
        (directory / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ArtifactError, match=message):
            Predictor(directory)
    truncated = copy_export(tiny_exports, tmp_path, name="truncated")
    text = (truncated / "manifest.json").read_text()
    (truncated / "manifest.json").write_text(text[: len(text) // 2])
    with pytest.raises(ArtifactError, match=r"truncated/manifest.json is not valid JSON \(truncated or edited\?\)"):
        Predictor(truncated)


def test_a_signed_export_refuses_deliberate_edits(tmp_path, tiny_dynafast_dir, tiny_exports, toy_data):
    (tmp_path / "key").write_bytes(b"0123456789abcdef0123456789abcdef\n")
    key = read_sign_key(tmp_path / "key")
    signed = export.export_model(ExportConfig(tiny_dynafast_dir, tmp_path / "signed", width=0.5), sign_key=key)
    assert json.loads((signed / "manifest.json").read_text())["signature"]["algorithm"] == "hmac-sha256"
    texts = texts_of(toy_data, 8)
    expected = Predictor(tiny_exports[(0.5, True)], threads=1).predict(texts).labels
    assert Predictor(signed, threads=1, sign_key=key).predict(texts).labels == expected
    swapped = Path(shutil.copytree(signed, tmp_path / "swapped"))
    edit_export_file(swapped, "export.json", lambda r: r.update(labels=["1", "0"]))  # the program cannot tell this one
    assert Predictor(swapped, threads=1).predict(texts).labels == [{"0": "1", "1": "0"}[x] for x in expected]
    with pytest.raises(ArtifactError, match=r"swapped/manifest.json: the signature does not match: the export was "
                                            r"edited after it was signed, or signed with another key"):
        Predictor(swapped, threads=1, sign_key=key)
    with pytest.raises(ArtifactError, match="the signature does not match"):
        Predictor(signed, threads=1, sign_key=b"another key of 16+ bytes")
    with pytest.raises(ArtifactError, match=r"manifest.json is not signed, and a sign key was given"):
        Predictor(tiny_exports[(0.5, True)], threads=1, sign_key=key)
    (tmp_path / "short").write_text("secret\n")
    with pytest.raises(ValueError, match=r"short holds 6 bytes; use at least 16 random ones"):
        read_sign_key(tmp_path / "short")


def test_the_sign_key_comes_from_the_configs_file_or_from_memory_not_both(tmp_path, tiny_dynafast_dir):
    (tmp_path / "key").write_bytes(b"0123456789abcdef0123456789abcdef\n")
    config = ExportConfig(tiny_dynafast_dir, tmp_path / "e", width=0.5, no_exit=True, onnx=False,
                          sign_key_file=tmp_path / "key")
    with pytest.raises(ValueError, match=r"two sign keys: sign_key and sign_key_file '.*key'; give one"):
        export.export_model(config, sign_key=b"another key of 16+ bytes")
    assert not (tmp_path / "e").exists()
    out = export.export_model(config)
    verify(out, read_sign_key(tmp_path / "key"))
    with pytest.raises(ArtifactError, match="the signature does not match"):
        verify(out, b"another key of 16+ bytes")


def test_a_link_in_an_export_is_refused_by_name_whatever_its_hash(tmp_path, tiny_exports):
    """Every file is a regular file inside the directory (lstat), even a link whose target's sha256 is listed."""
    import hashlib

    for name, target in (("passwd.txt", Path("/etc/passwd")), ("vocab.txt", tmp_path / "outside.txt"),
                         ("sub", tmp_path)):
        directory = copy_export(tiny_exports, tmp_path, name=f"with-{name}")
        if name == "vocab.txt":
            target.write_bytes((directory / name).read_bytes())
            (directory / name).unlink()
        (directory / name).symlink_to(target)
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        if target.is_file():
            manifest["files"][name] = hashlib.sha256(target.read_bytes()).hexdigest()
        (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
        with pytest.raises(ArtifactError, match=rf"with-{name}/{name} is a symbolic link \(to {target}\): every file "
                                                rf"of .*with-{name} must be a regular file inside it"):
            verify(directory)
    with pytest.raises(ArtifactError, match=r"holds \['link'\]: an export directory holds files only"):
        (tmp_path / "files").mkdir()
        (tmp_path / "files" / "link").symlink_to("/etc/passwd")
        write_manifest(tmp_path / "files")


def test_the_manifest_covers_the_source_the_export_was_made_from(tmp_path, tiny_exports, tiny_dynafast_dir, caplog):
    from paddle_dynafast.runtime.manifest import verify_source

    exported = tiny_exports[(1.0, True)]
    source = json.loads((exported / MANIFEST_FILE).read_text())["source"]
    assert source["directory"] == str(tiny_dynafast_dir) and sorted(source["files"]) == [
        "branches.json", "branches.safetensors", "config.json", "model.safetensors", "stage.json",
        "tokenizer_config.json", "vocab.txt"]
    verify_source(exported, tiny_dynafast_dir, signed=True)
    copied = Path(shutil.copytree(tiny_dynafast_dir, tmp_path / "source"))
    (copied / "model_state.pdparams").write_bytes(b"a pickle the loader would prefer no more, but still")
    with pytest.raises(ArtifactError, match=r"source/model_state.pdparams was not in .*source when .* was exported "
                                            r"from it: the source changed since; export it again"):
        verify_source(exported, copied)
    (copied / "model_state.pdparams").unlink()
    (copied / "vocab.txt").unlink()
    with pytest.raises(ArtifactError, match=r"source/vocab.txt is missing: .* was exported from it"):
        verify_source(exported, copied)
    older = copy_export(tiny_exports, tmp_path, name="older")  # written before sources were recorded, then signed
    (older / MANIFEST_FILE).unlink()
    write_manifest(older, KEY)
    with pytest.raises(ArtifactError, match=r"older/manifest.json does not cover the source .* of the export, and a "
                                            r"sign key was given: the dygraph runtime would run unchecked weights"):
        verify_source(older, tiny_dynafast_dir, signed=True)
    with caplog.at_level(logging.INFO, logger="paddle_dynafast.runtime.manifest"):
        verify_source(older, tiny_dynafast_dir)
    assert "records no sha256 of its source" in caplog.text
    signed = copy_export(tiny_exports, tmp_path, name="signed")
    (signed / MANIFEST_FILE).unlink()
    write_manifest(signed, KEY, source=tiny_dynafast_dir)
    verify(signed, KEY)
    manifest = json.loads((signed / MANIFEST_FILE).read_text())
    manifest["source"]["files"]["model.safetensors"] = "0" * 64  # an attacker's weights, their hash recorded
    (signed / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="the signature does not match"):
        verify(signed, KEY)
