"""Importers: other tools' networks read into netspec specs (``netspec import SOURCE``, ``netspec.from_module``).

:data:`SOURCES` is the dispatch table, keyed by the prefix of a source string (``timm:resnet50``,
``torchvision:mobilenet_v3_large``). Each importer returns an :class:`Imported`: the validated, verified
:class:`~netspec.Spec`, its YAML text and the notes a user should read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from netspec.errors import Problem, SpecError
from netspec.spec import Spec


@dataclass(frozen=True)
class Imported:
    """What an importer produces: ``spec`` (validated), ``text`` (its YAML) and ``notes`` (choices made)."""

    spec: Spec
    text: str
    notes: tuple[str, ...] = field(default=())
    source_model: Any = None
    """the module the spec was read from (model importers; ``netspec import --weights-out`` saves its weights)"""


Importer = Callable[..., Imported]
"""``importer(target, **options) -> Imported``; raises :class:`~netspec.SpecError`."""


def _timm(target: str, **options: Any) -> Imported:
    from netspec.importers.modules import import_timm

    return import_timm(target, **options)


def _torchvision(target: str, **options: Any) -> Imported:
    from netspec.importers.modules import import_torchvision

    return import_torchvision(target, **options)


SOURCES: dict[str, Importer] = {"timm": _timm, "torchvision": _torchvision}
"""Prefix (before the first ``:``) -> importer of what follows it."""


def known_sources() -> str:
    return ", ".join(f"{prefix}:NAME" for prefix in SOURCES)


def import_source(source: str, **options: Any) -> Imported:
    """Import ``source`` with the importer its prefix names; :class:`~netspec.SpecError` if none fits."""
    prefix, colon, rest = source.partition(":")
    if not colon or prefix not in SOURCES or not rest:
        raise SpecError([Problem((), f"not a source netspec can import: expected {known_sources()}", source)])
    return SOURCES[prefix](rest, **options)


__all__ = ["Imported", "Importer", "SOURCES", "import_source", "known_sources"]
