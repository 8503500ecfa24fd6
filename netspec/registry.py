"""The one registry of layer kinds: ``kind`` name -> params model class (which carries shape rule and builder)."""
from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from netspec.layers.base import Layer

LayerType = TypeVar("LayerType", bound="type[Layer]")

KINDS: dict[str, "type[Layer]"] = {}


def register(cls: LayerType) -> LayerType:
    """Class decorator: make a :class:`~netspec.layers.base.Layer` subclass usable as ``cls.kind`` in specs."""
    kind = getattr(cls, "kind", "")
    if not isinstance(kind, str) or not kind.isidentifier():
        raise TypeError(f"{cls.__name__}.kind must be an identifier string, got {kind!r}")
    existing = KINDS.get(kind)
    if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"kind {kind!r} is already registered by {existing.__module__}.{existing.__qualname__}")
    KINDS[kind] = cls
    return cls


def lookup(kind: str) -> "type[Layer] | None":
    return KINDS.get(kind)


def suggest(kind: str, choices: list[str] | None = None) -> str:
    """`` (did you mean 'se'?)`` when ``kind`` is close to a known name, else ``""``."""
    candidates = list(KINDS) if choices is None else choices
    close = difflib.get_close_matches(kind, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
