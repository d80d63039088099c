"""The configurations of the commands that run an export: serving over HTTP."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .base import _positive


@dataclass(frozen=True)
class ServeConfig:
    """The HTTP server of an exported model (``paddle-dynafast serve``): where it listens, how it batches, what it
    accepts."""

    host: str = "127.0.0.1"
    """Interface to listen on (0.0.0.0 for every interface)."""
    port: int = 8189
    """TCP port (0: any free port)."""
    batching: bool = True
    """Dynamic batching: requests that arrive within ``batch_window_ms`` run as one batch. False runs every request
    alone, as it arrives."""
    batch_window_ms: float = 5.0
    """How long the oldest waiting request waits for others of the same speed before its batch runs."""
    max_batch_size: int = 32
    """Texts per batch; a batch closes early when it is full (one request with more texts runs alone, cut into
    batches of this size)."""
    max_texts: int = 64
    """Texts (or pairs) one request may carry; more is refused with 413."""
    max_request_bytes: int = 1 << 20
    """Largest request body; a larger one is refused with 413."""
    speed: float = 0.0
    """The speed of a request that gives none (0: no early exit)."""
    drain_seconds: float = 30.0
    """On Ctrl-C or SIGTERM, how long requests in flight may take to finish before they are cancelled."""

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port!r} is not in [0, 65535]")
        if not self.batch_window_ms >= 0:
            raise ConfigError(f"batch_window_ms must be >= 0, got {self.batch_window_ms!r}")
        for name in ("max_batch_size", "max_texts", "max_request_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        if not 0 <= self.speed <= 1:
            raise ConfigError(f"speed {self.speed} is not in [0, 1]")
        _positive("drain_seconds", self.drain_seconds)
