"""Shipping the export a calibration measured: its files copied as they are, with the promise it made.

An export is not reproducible byte for byte (Paddle and paddle2onnx name
operators and tensors by process-wide counters), so a promise measured on one
program holds for that program's files, not for another export of the same
width. :func:`ship_measured` copies the files of the export a calibration ran
(``calibrate --runtime``'s ``exports/width-W``), checked against their manifest
and against the hashes the calibration recorded, adds the promise to
``export.json`` and writes a new manifest (signed with a key when given).
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Optional

from .. import atomic, outputs
from ..errors import ArtifactError
from .export_info import EXPORT_FILE, read_export_json
from .manifest import MANIFEST_FILE, write_manifest
from .promise import Promise

logger = logging.getLogger(__name__)


def ship_measured(measured: str | Path, output_dir: str | Path, promise: Promise, overwrite: bool = False,
                  sign_key: Optional[bytes] = None) -> Path:
    """Copy the export directory ``measured`` to ``output_dir`` with ``promise`` in its ``export.json``; the files
    ``promise.program_files`` names must have the hashes recorded there (else the export is not what was measured,
    an :class:`~paddle_dynafast.errors.ArtifactError`). Returns ``output_dir``."""
    measured, output_dir = Path(measured), Path(output_dir)
    info = read_export_json(measured)  # every file checked against its manifest
    listed = atomic.read_json(measured / MANIFEST_FILE)["files"]
    changed = sorted(name for name, digest in promise.program_files.items() if listed.get(name) != digest)
    if changed:
        raise ArtifactError(f"{measured}: {changed} differ from the files the calibration measured (its recorded "
                            "sha256): not the program the promise is about")
    if info.get("width") != promise.width:
        raise ArtifactError(f"{measured} is an export of width {info.get('width')}, the promise is about width "
                            f"{promise.width}")
    with outputs.claim(output_dir, outputs.EXPORT, [measured], replace=overwrite):
        with atomic.atomic_dir(output_dir) as tmp:
            _copy_files(measured, tmp, [name for name in listed if name != EXPORT_FILE])
            atomic.write_json(tmp / EXPORT_FILE, {**info, "promise": promise.to_json()})
            write_manifest(tmp, sign_key)
    logger.info("shipped %s -> %s with its promise: %s", measured, output_dir, promise.summary())
    return output_dir


def copy_export(source: str | Path, output_dir: str | Path, overwrite: bool = False) -> Path:
    """Copy the export directory ``source`` to ``output_dir`` as it is, manifest included (so the copy is the same
    program, file for file, and a runtime choice remembered for one holds for the other); every file is checked
    against the manifest first. Returns ``output_dir``."""
    source, output_dir = Path(source), Path(output_dir)
    read_export_json(source)  # every file checked against its manifest
    listed = atomic.read_json(source / MANIFEST_FILE)["files"]
    with outputs.claim(output_dir, outputs.EXPORT, [source], replace=overwrite):
        with atomic.atomic_dir(output_dir) as tmp:
            _copy_files(source, tmp, [*listed, MANIFEST_FILE])
    logger.info("copied the export %s -> %s", source, output_dir)
    return output_dir


def _copy_files(source: Path, target: Path, names) -> None:
    for name in names:
        shutil.copyfile(source / name, target / name)
