"""``netspec.build(spec, overrides={...})``: change a spec by dotted paths, for sweeps (Hydra, Optuna) without copies.

A path's first part names what to change:

- a top-level section: ``scale.width``, ``scale.depth``, ``input.size``, ``defaults.act``, ``drop_path``, ...;
- an entry by name, given or automatic: ``stage3.depth``, ``linear1.out``, ``stage2.attention.reduction``;
- a kind whose only entry it is: ``linear.out`` (when the spec has several, the error lists their names);
- an entry by position: ``layers.7.out``.

Values replace what is there (a nested path creates the mapping it needs: ``stage1.attention.se.reduction``).
Every bad path is a :class:`~netspec.SpecError` naming the override; a bad value is the spec's usual error.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from netspec.errors import Problem, SpecError
from netspec.spec import Spec, loads

SECTIONS = ("name", "input", "defaults", "scales", "scale", "drop_path", "define", "outputs", "features")


def _bad(key: str, message: str) -> Problem:
    return Problem(("overrides", key), message)


def _entry_index(spec: Spec, head: str, key: str) -> int | Problem:
    from netspec.entries import written_names

    names = written_names(list(spec.layers))
    if head in names:
        return names.index(head)
    same_kind = [index for index, layer in enumerate(spec.layers) if getattr(layer, "kind", None) == head]
    if len(same_kind) == 1:
        return same_kind[0]
    if same_kind:
        listed = ", ".join(names[index] for index in same_kind)
        return _bad(key, f"{len(same_kind)} entries are {head}s ({listed}): name one")
    return _bad(key, f"no section, entry or kind {head!r} (sections: {', '.join(SECTIONS)}; entries: "
                     f"{', '.join(names)})")


def _set(target: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        child = target.get(part)
        if isinstance(child, str):  # `attention: se` -> {se: {}} so that attention.se.reduction can be set
            child = {child: {}}
        if not isinstance(child, dict):
            child = {}
        target[part] = child
        target = child
    target[parts[-1]] = value


def apply_overrides(spec: Spec, overrides: Mapping[str, Any]) -> Spec:
    """A new spec: ``spec`` with each dotted-path override applied (see the module docstring)."""
    data = copy.deepcopy(spec.to_data())
    problems: list[Problem] = []
    for key, value in overrides.items():
        parts = str(key).split(".")
        if not all(parts):
            problems.append(_bad(key, "empty part in the path"))
            continue
        head = parts[0]
        if head in SECTIONS:
            if len(parts) == 1:
                data[head] = value
            else:
                section = data.setdefault(head, {})
                if not isinstance(section, dict):
                    problems.append(_bad(key, f"{head} is not a mapping"))
                    continue
                _set(section, parts[1:], value)
            continue
        if head == "layers" and len(parts) >= 3 and parts[1].isdigit():
            index: int | Problem = int(parts[1])
            if index >= len(spec.layers):  # type: ignore[operator]
                problems.append(_bad(key, f"there are {len(spec.layers)} entries (0 to {len(spec.layers) - 1})"))
                continue
            rest = parts[2:]
        else:
            index = _entry_index(spec, head, key)
            rest = parts[1:]
        if isinstance(index, Problem):
            problems.append(index)
            continue
        if not rest:
            problems.append(_bad(key, "name a param of the entry (e.g. out, depth)"))
            continue
        entry = data["layers"][index]
        kind = spec.layers[index].kind
        if isinstance(entry, str):
            entry = data["layers"][index] = {entry: {}}
        params = entry.get(kind)
        if not isinstance(params, dict):
            params = entry[kind] = {}
        if rest[0] in ("name", "from"):
            _set(entry, rest, value)
        elif rest[0] not in spec.layers[index].entry_params():
            known = ", ".join(spec.layers[index].entry_params())
            problems.append(_bad(key, f"{kind} has no param {rest[0]!r} (params: {known})"))
        else:
            _set(params, rest, value)
    if problems:
        raise SpecError(problems)
    return loads(json.dumps(data), name=f"<{spec.name or 'spec'} with overrides>")
