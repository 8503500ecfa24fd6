"""What every importer returns (:class:`Imported`); its own module so that the importers, which the dispatch table
in ``netspec/importers/__init__.py`` names, do not import that package back."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netspec.spec import Spec


@dataclass(frozen=True)
class Imported:
    """What an importer produces: ``spec`` (validated), ``text`` (the spec as YAML, with comments, loadable with
    :func:`netspec.loads` into ``spec``) and ``notes`` (choices the importer made that the user should know)."""

    spec: Spec
    text: str
    notes: tuple[str, ...] = field(default=())
    source_model: Any = None
    """the module the spec was read from (model importers; ``netspec import --weights-out`` saves its weights)"""
