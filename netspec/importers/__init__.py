"""Importers: other tools' network descriptions read into netspec specs (``netspec import``, ``netspec.from_*``).

One module per source. :data:`SOURCES` is the dispatch table, keyed by the prefix of a source string
(``ultralytics:yolov8.yaml``, ``timm:resnet50``, ``torchvision:mobilenet_v3_large``); a source without a known prefix is a file, read by the first entry of
:data:`FILE_READERS` that recognises it (an Ultralytics model YAML: a mapping with ``backbone:``).
Each importer returns an :class:`Imported`: the validated :class:`~netspec.Spec` and its YAML text with comments.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from netspec.errors import Problem, SpecError
from netspec.importers.imported import Imported


Importer = Callable[..., Imported]
"""``importer(target, **options) -> Imported``; raises :class:`~netspec.SpecError` (located where it can be).

``options`` are the ``netspec import`` options the user gave, as keywords (``scale``, ``verify``; absent when not
given): one the importer's signature does not name is a :class:`~netspec.SpecError` before it is called."""


def _ultralytics(target: str, *, scale: str | None = None, verify: bool = False) -> Imported:
    from netspec.importers.ultralytics import import_file

    return import_file(target, scale=scale, verify=verify)


def _call(importer: Importer, target: str, source: str, options: dict[str, Any]) -> Imported:
    """``importer(target, **options)``, once every option is one it takes (else a one-line error)."""
    import inspect

    parameters = inspect.signature(importer).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(options) - set(parameters))
        if unknown:
            given = ", ".join(f"--{name}" for name in unknown)
            raise SpecError([Problem((), f"{given} does not apply to this source", source)])
    return importer(target, **options)


def _timm(target: str, *, args: dict[str, Any] | None = None, verify: bool = True, input_size: Any = None) -> Imported:
    from netspec.importers.modules import import_timm

    return import_timm(target, args=args, verify=verify, input_size=input_size)


def _torchvision(target: str, *, args: dict[str, Any] | None = None, verify: bool = True,
                 input_size: Any = None) -> Imported:
    from netspec.importers.modules import import_torchvision

    return import_torchvision(target, args=args, verify=verify, input_size=input_size)


SOURCES: dict[str, Importer] = {"ultralytics": _ultralytics, "timm": _timm, "torchvision": _torchvision}
"""Prefix (before the first ``:``) -> importer of what follows it."""

FILE_READERS: list[tuple[Callable[[str], bool], Importer]] = []
"""(recognises(path), importer) for sources given as a plain file path, tried in order."""


def _is_ultralytics_file(path: str) -> bool:
    from netspec.importers.ultralytics import looks_like_ultralytics

    return looks_like_ultralytics(path)


FILE_READERS.append((_is_ultralytics_file, _ultralytics))


def known_sources() -> str:
    """The sources ``netspec import`` accepts, in words."""
    prefixes = ", ".join(f"{prefix}:{'FILE' if prefix == 'ultralytics' else 'NAME'}" for prefix in SOURCES)
    return f"an Ultralytics model YAML file (backbone:/head:), or {prefixes}"


def import_source(source: str, **options: Any) -> Imported:
    """Import ``source`` with the importer its prefix names, or as a file; :class:`~netspec.SpecError` if none fits."""
    prefix, colon, rest = source.partition(":")
    if colon and prefix in SOURCES and not os.path.exists(source):
        return _call(SOURCES[prefix], rest, source, options)
    if not os.path.exists(source):
        raise SpecError([Problem((), f"no such file, and not a known source prefix: expected {known_sources()}",
                                 source)])
    for recognises, importer in FILE_READERS:
        if recognises(source):
            return _call(importer, source, source, options)
    raise SpecError([Problem((), f"not a file netspec can import: expected {known_sources()}", source, 1, 1)])


__all__ = ["FILE_READERS", "Imported", "Importer", "SOURCES", "import_source", "known_sources"]
