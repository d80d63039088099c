"""The manifest of an export directory: the sha256 of every file, and an optional HMAC signature.

``manifest.json`` lists library versions and the sha256 of every file, checked
by :func:`verify` before anything is read: a file missing, altered or not listed
is an error naming it. The manifest catches accidental damage; whoever can edit
the directory can also rewrite its hashes. Against deliberate edits, an export
can be signed with a secret key (``--sign-key-file``): the manifest then carries
an HMAC-SHA256 of its contents, and a load given the same key refuses a manifest
whose signature does not match, or that has none.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from .. import atomic
from ..errors import ArtifactError, ConfigError, MissingFileError
from ..model.stage_info import versions

logger = logging.getLogger(__name__)


MANIFEST_FILE = "manifest.json"


SIGNATURE = "hmac-sha256"


MIN_KEY_BYTES = 16


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
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
    body = json.dumps({"versions": manifest.get("versions"), "files": manifest["files"]}, sort_keys=True,
                      separators=(",", ":"))
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


def write_manifest(directory: str | Path, sign_key: Optional[bytes] = None) -> None:
    """``manifest.json`` of ``directory``: library versions and the sha256 of every file (and an HMAC with
    ``sign_key``). An export holds files only."""
    directory = Path(directory)
    entries = sorted(p for p in directory.iterdir() if p.name != MANIFEST_FILE)
    nested = [p.name for p in entries if not p.is_file()]
    if nested:
        raise ArtifactError(f"{directory} holds {nested}: an export directory holds files only")
    manifest: Dict[str, Any] = {"versions": versions(), "files": {p.name: sha256(p) for p in entries}}
    if sign_key is not None:
        manifest["signature"] = {"algorithm": SIGNATURE, "hmac": _signature(manifest, sign_key)}
    atomic.write_json(directory / MANIFEST_FILE, manifest)


def verify(directory: str | Path, sign_key: Optional[bytes] = None, required: Sequence[str] = ()) -> None:
    """Check every file against ``manifest.json`` (and its signature with ``sign_key``). The manifest must list
    every file of the directory, only files that are there, and every name of ``required``."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(f"{directory} has no {MANIFEST_FILE}: not an exported model")
    manifest = atomic.read_json(path)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{path} lists no files: it must list every file of the export with its sha256")
    for name, digest in files.items():
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
    unlisted = sorted(p.name for p in directory.iterdir() if p.name != MANIFEST_FILE and p.name not in files)
    if unlisted:
        raise ArtifactError(f"{directory / unlisted[0]} is not listed in {MANIFEST_FILE}: an export holds only the "
                            "files its manifest lists")
    for name, digest in files.items():
        file = directory / name
        if not file.is_file():
            raise ArtifactError(f"{file} is missing (listed in {MANIFEST_FILE})")
        if sha256(file) != digest:
            raise ArtifactError(f"{file} was altered: its sha256 differs from {MANIFEST_FILE}")
    missing = [name for name in required if name not in files]
    if missing:
        raise ArtifactError(f"{path} does not list {missing[0]}: not an exported model")
