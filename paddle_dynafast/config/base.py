"""What every config shares: defaults read off the dataclasses, the checks of floats and seeds, and the
round trip through JSON (:func:`to_dict`, :func:`from_dict`)."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from typing import Any, Optional, Type, TypeVar

from ..errors import ConfigError

T = TypeVar("T")


def default(cls: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``cls`` (a fresh one for fields with a factory)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise KeyError(f"{cls.__name__} has no field {name!r}")
    f = fields[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise KeyError(f"{cls.__name__}.{name} has no default")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


def check_finite(config: Any) -> None:
    """Every float of the dataclass ``config`` (alone or in a tuple) is finite: NaN and infinity are refused with
    the field named, since they train to NaN weights or write invalid JSON instead of failing."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        several = isinstance(value, (tuple, list))
        for item in value if several else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"{f.name} must be {'finite numbers' if several else 'a finite number'}, "
                                  f"got {item!r}")


MAX_SEED = 2 ** 32 - 1
"""The largest seed every generator takes (NumPy's is the narrowest: ``[0, 2**32 - 1]``)."""


def check_seed(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{name} must be a whole number in [0, {MAX_SEED}], got {value!r}")


def check_count(name: str, value: int, minimum: int = 1) -> None:
    """``value`` is a whole number >= ``minimum`` (a bool is not one); the error names ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")


def usable_cores() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``: a container's or ``taskset``'s share, not the
    machine's count), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # a platform without affinity
        return os.cpu_count() or 1


def all_cores() -> int:
    """The CPUs this process may use (:func:`usable_cores`): the default thread count of the commands that
    compute."""
    return usable_cores()


def check_threads(name: str, value: int) -> None:
    """``value`` threads: a whole number from 1 to the CPUs this process may use (more only crowd the same cores,
    and each costs memory: 100 000 of them exhaust it)."""
    check_count(name, value)
    limit = usable_cores()
    if value > limit:
        raise ConfigError(f"{name} {value} is more than the {limit} CPUs this process may use "
                          f"(os.sched_getaffinity); give at most {limit}")


def to_dict(config: Any) -> dict:
    """A JSON-ready dict of a (nested) config dataclass (tuples become lists, as JSON reads them back)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: Type[T], data: dict) -> T:
    """Rebuild a config written by :func:`to_dict`; unknown or missing keys are errors naming them."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field(s) {unknown}")
    kwargs = {}
    for name, value in data.items():
        sub = fields[name].type
        sub_cls = _nested_class(cls, sub)
        kwargs[name] = from_dict(sub_cls, value) if sub_cls is not None and isinstance(value, dict) else value
    return cls(**kwargs)


def _nested_class(cls: type, annotation: Any) -> Optional[type]:
    """The config dataclass a field's annotation names (``"DataConfig"``), looked up where ``cls`` is defined; None
    for any other annotation."""
    if not isinstance(annotation, str):
        return None
    found = getattr(sys.modules[cls.__module__], annotation, None)
    return found if isinstance(found, type) and dataclasses.is_dataclass(found) else None
