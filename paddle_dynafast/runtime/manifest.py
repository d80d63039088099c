"""The manifest of an export directory: the sha256 of every file, and an optional HMAC signature.

``manifest.json`` lists library versions and the sha256 of every file, checked
by :func:`verify` before anything is read: a file missing, altered or not listed
is an error naming it. The manifest catches accidental damage; whoever can edit
the directory can also rewrite its hashes. Against deliberate edits, an export
can be signed with a secret key (``--sign-key-file``): the manifest then carries
an HMAC-SHA256 of its contents, and a load given the same key refuses a manifest
whose signature does not match, or that has none.

Every file of an export is a regular file inside the directory (:mod:`paddle_dynafast.files`): a symbolic link, a
directory, a pipe or a device is refused by name before anything is hashed, and files are hashed without following
links. The manifest also records the sha256 of the model files of the directory the export was made from (its
``source``: what the dygraph runtime runs), inside the signature: :func:`verify_source` checks them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from .. import atomic, files
from ..errors import ArtifactError, ConfigError, MissingFileError
from ..model.stage_info import MODEL_FILES, versions

logger = logging.getLogger(__name__)


MANIFEST_FILE = "manifest.json"


SIGNATURE = "hmac-sha256"


MIN_KEY_BYTES = 16


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256(path: Path) -> str:
    """The sha256 of the regular file ``path`` (a link is refused, not followed)."""
    digest = hashlib.sha256()
    with files.open_regular(path) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sign_key(path: str | Path) -> bytes:
    """The secret of ``--sign-key-file``: the file's bytes (a final line end is ignored), at least 16 of them."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"sign key file {path} does not exist")
    key = path.read_bytes().rstrip(b"\r\n")
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"sign key file {path} holds {len(key)} bytes; use at least {MIN_KEY_BYTES} random ones "
                          "(for example: head -c 32 /dev/urandom > KEYFILE)")
    return key


def _signature(manifest: Dict[str, Any], key: bytes) -> str:
    signed = {"versions": manifest.get("versions"), "files": manifest["files"]}
    if "source" in manifest:  # a manifest written before sources were recorded is signed without one
        signed["source"] = manifest["source"]
    body = json.dumps(signed, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


def write_manifest(directory: str | Path, sign_key: Optional[bytes] = None,
                   source: Optional[str | Path] = None) -> None:
    """``manifest.json`` of ``directory``: library versions and the sha256 of every file (and an HMAC with
    ``sign_key``), and with ``source`` the sha256 of the model files of the directory it was made from. An export
    holds regular files only."""
    directory = Path(directory)
    entries = sorted(p for p in directory.iterdir() if p.name != MANIFEST_FILE)
    nested = [p.name for p in entries if not files.is_regular(p)]
    if nested:
        raise ArtifactError(f"{directory} holds {nested}: an export directory holds files only")
    manifest: Dict[str, Any] = {"versions": versions(), "files": {p.name: sha256(p) for p in entries}}
    if source is not None:
        source = Path(source)
        manifest["source"] = {"directory": str(source), "files": {name: sha256(source / name) for name in MODEL_FILES
                                                                  if files.exists(source / name)}}
    if sign_key is not None:
        manifest["signature"] = {"algorithm": SIGNATURE, "hmac": _signature(manifest, sign_key)}
    atomic.write_json(directory / MANIFEST_FILE, manifest)


def verify(directory: str | Path, sign_key: Optional[bytes] = None, required: Sequence[str] = ()) -> None:
    """Check every file against ``manifest.json`` (and its signature with ``sign_key``). The manifest must list
    every file of the directory, only files that are there, and every name of ``required``."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not files.exists(path):
        raise ArtifactError(f"{directory} has no {MANIFEST_FILE}: not an exported model")
    for entry in sorted(directory.iterdir()):  # before anything is read: a link is named, never followed
        files.check_regular(entry)
    manifest = atomic.read_json(path)
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict) or not listed:
        raise ArtifactError(f"{path} lists no files: it must list every file of the export with its sha256")
    for name, digest in listed.items():
        if not isinstance(name, str) or Path(name).name != name or name in (".", "..", MANIFEST_FILE):
            raise ArtifactError(f"{path} lists {name!r}, which is not a file name of the directory")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ArtifactError(f"{path} gives {name} the sha256 {digest!r}, which is not 64 hexadecimal digits")
    if sign_key is not None:
        signature = manifest.get("signature")
        if not isinstance(signature, dict) or signature.get("algorithm") != SIGNATURE:
            raise ArtifactError(f"{path} is not signed, and a sign key was given: refusing an unsigned export")
        if not hmac.compare_digest(str(signature.get("hmac", "")), _signature(manifest, sign_key)):
            raise ArtifactError(f"{path}: the signature does not match: the export was edited after it was signed, "
                                "or signed with another key")
    elif "signature" in manifest:
        logger.info("%s is signed; pass its key (--sign-key-file) to check the signature", path)
    unlisted = sorted(p.name for p in directory.iterdir() if p.name != MANIFEST_FILE and p.name not in listed)
    if unlisted:
        raise ArtifactError(f"{directory / unlisted[0]} is not listed in {MANIFEST_FILE}: an export holds only the "
                            "files its manifest lists")
    for name, digest in listed.items():
        file = directory / name
        if not files.exists(file):
            raise ArtifactError(f"{file} is missing (listed in {MANIFEST_FILE})")
        if sha256(file) != digest:
            raise ArtifactError(f"{file} was altered: its sha256 differs from {MANIFEST_FILE}")
    missing = [name for name in required if name not in listed]
    if missing:
        raise ArtifactError(f"{path} does not list {missing[0]}: not an exported model")


def verify_source(directory: str | Path, source: str | Path, signed: bool = False) -> None:
    """Check the model files of ``source``, the directory the export ``directory`` was made from, against the
    sha256 its manifest recorded (call it after :func:`verify`). ``signed``: the manifest's signature was checked
    with a key, so the source must be covered by it; an export written before sources were recorded is then
    refused (without a key its source is read unchecked)."""
    directory, source = Path(directory), Path(source)
    path = directory / MANIFEST_FILE
    entry = atomic.read_json(path).get("source")
    if entry is None:
        if signed:
            raise ArtifactError(f"{path} does not cover the source {source} of the export, and a sign key was "
                                "given: the dygraph runtime would run unchecked weights; export it again with "
                                "--sign-key-file, or use an export runtime")
        logger.info("%s records no sha256 of its source %s (an older export): the dygraph runtime reads it unchecked",
                    path, source)
        return
    recorded = entry.get("files") if isinstance(entry, dict) else None
    if not isinstance(recorded, dict) or not all(name in MODEL_FILES and isinstance(digest, str)
                                                 for name, digest in recorded.items()):
        raise ArtifactError(f"{path}: its source entry is malformed")
    for name in MODEL_FILES:
        file = source / name
        if name not in recorded:
            if files.exists(file):
                raise ArtifactError(f"{file} was not in {source} when {directory} was exported from it: the source "
                                    "changed since; export it again")
            continue
        if not files.exists(file):
            raise ArtifactError(f"{file} is missing: {directory} was exported from it")
        if sha256(file) != recorded[name]:
            raise ArtifactError(f"{file} changed since {directory} was exported from it (its sha256 differs from "
                                f"{MANIFEST_FILE}); export it again")
