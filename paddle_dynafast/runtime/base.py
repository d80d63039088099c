"""The runtime interface, and the typed, checked reader of an export directory.

Every runtime answers one call, ``run_batch(input_ids, token_type_ids, speed)
-> (probs [batch, num_labels], exit_layer [batch])``, on token ids
``[batch, seq]`` int64; ``speed`` is ignored by a model without the exit loop
(every sample then runs every layer). What the model is (labels, width, layers,
``max_seq_len``, whether the exit loop is inside, the shapes FLOPs need) is its
:class:`ExportInfo`. Export, predict, bench and serve use only this interface.

An export directory holds ``model.json``/``model.pdiparams`` (Paddle 3's PIR
format), optionally ``model.onnx``, the tokenizer, ``export.json`` and
``manifest.json`` (library versions and the sha256 of every file, checked by
:func:`verify` before anything is read: a file missing, altered or not listed
is an error naming it). The manifest catches accidental damage; whoever can
edit the directory can also rewrite its hashes. Against deliberate edits, an
export can be signed with a secret key (``--sign-key-file``): the manifest then
carries an HMAC-SHA256 of its contents, and a load given the same key refuses a
manifest whose signature does not match, or that has none.

When a runtime opens an export it checks ``export.json`` against the program
itself (:meth:`Runtime.check_program`): the input and output names, and one
text of ``max_seq_len`` tokens at speed 0, which must give one probability per
label and, with the exit loop, run ``num_layers`` layers.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple

import numpy as np

from .. import artifacts
from ..config import BranchConfig
from ..errors import ArtifactError, ConfigError, MissingFileError, summary
from ..model.branches import branch_config
from ..model.flops import BertShape, full_flops, sample_flops
from ..model.stage_info import versions

logger = logging.getLogger(__name__)

PROGRAM = "model"
EXPORT_FILE = "export.json"
MANIFEST_FILE = "manifest.json"
ONNX_FILE = f"{PROGRAM}.onnx"
INT8_ONNX_FILE = f"{PROGRAM}.int8.onnx"
OUTPUTS = ("probs", "exit_layer", "uncertainty")
"""The outputs of the exit-loop program, in the order it returns them; the plain classifier returns ``probs``."""
INPUTS = ("input_ids", "token_type_ids", "speed")
"""The inputs of the exit-loop program; the plain classifier takes the first two."""
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
    artifacts.write_json(directory / MANIFEST_FILE, manifest)


def verify(directory: str | Path, sign_key: Optional[bytes] = None) -> Dict[str, Any]:
    """Check every file against ``manifest.json`` (and its signature with ``sign_key``); returns the raw
    ``export.json``. The manifest must list every file of the directory, and only files that are there."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(f"{directory} has no {MANIFEST_FILE}: not an exported model")
    manifest = artifacts.read_json(path)
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
    if EXPORT_FILE not in files:
        raise ArtifactError(f"{path} does not list {EXPORT_FILE}: not an exported model")
    return artifacts.read_json(directory / EXPORT_FILE)


@dataclass(frozen=True)
class ExportInfo:
    """What a runtime runs: ``export.json`` of an export directory, or the same facts of a dygraph model."""

    directory: Path
    """Where the tokenizer files are."""
    width: float
    exit_loop: bool
    num_layers: int
    labels: Tuple[str, ...]
    max_seq_len: int
    shape: BertShape
    """The full-width shape (FLOPs are counted against it)."""
    branch: Optional[BranchConfig] = None
    """The branches' size, with the exit loop."""
    outputs: Tuple[str, ...] = ()
    """The program's own output names, in the order of :data:`OUTPUTS` (``probs`` alone without the exit loop)."""
    inputs: Tuple[str, ...] = ()
    """The program's input names (:data:`INPUTS`; the first two without the exit loop)."""
    onnx_outputs: Tuple[str, ...] = ()
    """The same for ``model.onnx``, when there is one."""
    source: str = ""
    """The directory it was exported from."""

    @classmethod
    def read(cls, directory: str | Path, sign_key: Optional[bytes] = None) -> "ExportInfo":
        """Verify the manifest (and its signature with ``sign_key``), then read ``export.json``; a missing or
        malformed entry is an error naming it."""
        directory = Path(directory)
        raw = verify(directory, sign_key)
        try:
            branch = raw.get("branch")
            info = cls(directory=directory, width=float(raw["width"]), exit_loop=bool(raw["exit_loop"]),
                       num_layers=int(raw["num_layers"]), labels=tuple(str(x) for x in raw["labels"]),
                       max_seq_len=int(raw["max_seq_len"]), shape=BertShape(**raw["full_width_shape"]),
                       branch=None if branch is None else branch_config(branch),
                       outputs=_program_names(raw, "outputs"), onnx_outputs=_program_names(raw, "onnx_outputs"),
                       inputs=tuple(raw.get("inputs", INPUTS[:3 if raw["exit_loop"] else 2])),
                       source=str(raw.get("source", "")))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ArtifactError(f"{directory / EXPORT_FILE} is malformed: {type(error).__name__} {error}") from error
        if info.num_layers != info.shape.num_layers:
            raise ArtifactError(f"{directory / EXPORT_FILE}: num_layers {info.num_layers} differs from its "
                                f"full_width_shape's {info.shape.num_layers}")
        return info

    @property
    def output_names(self) -> Tuple[str, ...]:
        """Our names of the outputs, in the program's order."""
        return OUTPUTS if self.exit_loop else OUTPUTS[:1]

    def flops(self, tokens: np.ndarray, exit_layer: np.ndarray) -> np.ndarray:
        """Analytic FLOPs of each sample ``[n]`` from its token count and exit layer, branches included."""
        if self.exit_loop:
            return sample_flops(self.shape, self.branch, tokens, exit_layer, self.width)
        return full_flops(self.shape, tokens, self.width)


def _program_names(raw: Dict[str, Any], key: str) -> Tuple[str, ...]:
    """``{"probs": "fetch_name_0", ...}`` in :data:`OUTPUTS` order. An export written before the names were recorded
    has a list of our names there; its outputs are then read by position (empty tuple)."""
    names = raw.get(key)
    if not isinstance(names, dict):
        return ()
    return tuple(names[n] for n in OUTPUTS if n in names)


class Runtime(ABC):
    """One way of running a model; see the module docstring."""

    kind: ClassVar[str]
    """The name ``--runtime`` takes."""
    precisions: ClassVar[Tuple[str, ...]] = ("fp32",)
    """The arithmetic it can run the model in (``precision=`` of its constructor)."""
    precision: str = "fp32"
    info: ExportInfo

    @abstractmethod
    def run_batch(self, input_ids: np.ndarray, token_type_ids: np.ndarray,
                  speed: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
        """``(probs [batch, num_labels] float32, exit_layer [batch] int64)`` of one batch ``[batch, seq]``."""

    def check_program(self, input_names: Sequence[str], output_names: Sequence[str],
                      recorded_outputs: Sequence[str]) -> None:
        """``export.json`` against the program: its input and output names, and one text of ``max_seq_len``
        tokens at speed 0, which must give one probability per label and, with the exit loop, run every layer.
        Each mismatch is an :class:`ArtifactError` naming the entry."""
        info, where = self.info, self.info.directory / EXPORT_FILE
        if sorted(input_names) != sorted(info.inputs):
            raise ArtifactError(f"{where} lists inputs {list(info.inputs)}; the program takes {list(input_names)}")
        if recorded_outputs and sorted(recorded_outputs) != sorted(output_names):
            raise ArtifactError(f"{where} lists outputs {list(recorded_outputs)}; the program returns "
                                f"{list(output_names)}")
        ids = np.ones((1, info.max_seq_len), dtype="int64")  # [1, max_seq_len]: any token id, no padding
        try:
            probs, exit_layer = self.run_batch(ids, np.zeros_like(ids), 0.0)
        except Exception as error:  # Paddle's embedding error when the position table is shorter, say
            raise ArtifactError(f"{where}: the program fails on a text of max_seq_len {info.max_seq_len} tokens: "
                                f"{summary(error)}") from error
        if tuple(np.shape(probs)) != (1, len(info.labels)):
            raise ArtifactError(f"{where} lists {len(info.labels)} labels {list(info.labels)}; the program returns "
                                f"probabilities of shape {list(np.shape(probs))}")
        if info.exit_loop and int(np.asarray(exit_layer).reshape(-1)[0]) != info.num_layers:
            raise ArtifactError(f"{where} says num_layers {info.num_layers}; at speed 0 the program runs "
                                f"{int(np.asarray(exit_layer).reshape(-1)[0])} layers")

    def _outputs(self, by_name: Dict[str, np.ndarray], program_names: Sequence[str],
                 positional: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """``(probs, exit_layer)`` taken by the names recorded in ``export.json`` (by position for an old export)."""
        values = [by_name[n] for n in program_names] if program_names else list(positional)
        if len(values) < len(self.info.output_names):
            raise ArtifactError(f"{self.info.directory}: the program returns {len(values)} outputs, "
                                f"export.json expects {list(self.info.output_names)}")
        probs = values[0]
        if self.info.exit_loop:
            return probs, values[1]
        return probs, np.full(len(probs), self.info.num_layers, dtype="int64")
