"""Parse one YAML layer entry into its params model: ``kind``, ``{kind: null}`` or ``{kind: {params}}``.

A top-level entry may carry ``name:`` and ``from:`` beside its kind; a field of a kind that holds another layer
(a stage's ``attention``, its ``conv``: :data:`AttentionEntry`, :data:`ConvEntry`) is written the same way and
parsed here too, restricted to the kinds that fill its role. ``timm:NAME`` entries are timm's attention names
(:mod:`netspec.timm_attention`). Every problem is a :class:`~netspec.errors.Finding` with its path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from netspec.errors import Finding, Path, format_path
from netspec.layers.base import NAME_RULE, WIRING, Attention, BlockConv, EntryInputs, EntryName, Layer, Role
from netspec.messages import did_you_mean, findings_from_validation, short
from netspec.registry import FAILED_PLUGINS, KINDS, suggest
from netspec.timm_attention import PREFIX as TIMM_PREFIX, resolve as resolve_timm


@dataclass(frozen=True)
class EntryRole:
    """Marks a params field that holds a nested layer entry of the given role."""

    role: Role


def _coerce_entry(role: Role) -> Any:
    def convert(value: Any) -> Any:
        if value is None or isinstance(value, Layer):
            if isinstance(value, Layer) and not value.fills(role):
                raise ValueError(f"{value.kind!r} is not {_role_name(role)}; choose from {', '.join(kinds_of(role))}")
            if isinstance(value, Layer) and value.wired:
                raise ValueError(f"a nested {value.kind!r} cannot have `name` or `from`: only top-level entries can")
            return value
        layer, findings = parse_entry(value, (), role=role)
        if findings:
            raise ValueError("; ".join(f"{format_path(f.path) or 'entry'}: {f.message}" for f in findings))
        return layer

    return BeforeValidator(convert)


AttentionEntry = Annotated[Attention | None, EntryRole("attention"), _coerce_entry("attention")]
ConvEntry = Annotated[BlockConv | None, EntryRole("conv"), _coerce_entry("conv")]


def kinds_of(role: Role) -> list[str]:
    return sorted(kind for kind, cls in KINDS.items() if cls.fills(role))


def _role_name(role: Role) -> str:
    return {"attention": "an attention kind", "conv": "a kind usable as a block's conv"}.get(role, f"a {role} kind")


def entry_fields(cls: type[Layer]) -> dict[str, Role]:
    """Fields of ``cls`` that hold nested entries, with the role they accept."""
    result: dict[str, Role] = {}
    for name, info in cls.param_fields().items():
        for meta in info.metadata:
            if isinstance(meta, EntryRole):
                result[name] = meta.role
    return result


def parse_entry(raw: Any, path: Path, *, role: Role | None = None) -> tuple[Layer | None, list[Finding]]:
    """Validate one layer entry into its params model; report every problem found with its path.

    A top-level entry (``role`` None) may carry ``name:`` and ``from:`` beside its kind key.
    """
    wiring: dict[str, Any] = {}
    if isinstance(raw, dict) and len(raw) > 1 and role is None:
        wiring = {key: value for key, value in raw.items() if key in WIRING.values()}
        if wiring:
            raw = {key: value for key, value in raw.items() if key not in WIRING.values()}
    if isinstance(raw, dict) and role is not None and any(key in WIRING.values() for key in raw) and len(raw) > 1:
        key = next(key for key in raw if key in WIRING.values())
        return None, [Finding(path + (key,), "only top-level entries can have `name` or `from`", on_key=True)]
    if isinstance(raw, str):
        kind, params = raw, None
    elif isinstance(raw, dict) and len(raw) == 1:
        kind, params = next(iter(raw.items()))
    elif isinstance(raw, dict) and not raw and wiring:
        return None, [Finding(path, f"an entry with {' and '.join(wiring)} needs a kind, e.g. `- conv: {{out: 64}}`")]
    elif isinstance(raw, dict) and not raw:
        return None, [Finding(path, "empty layer: write a kind, e.g. `- se` or `- conv: {out: 64}`")]
    elif isinstance(raw, dict):
        names = ", ".join(repr(key) for key in raw)
        message = (
            f"a layer is one mapping {{kind: {{params}}}}, found keys {names}: "
            "indent params under the kind, or start a new layer with '-'"
        )
        return None, [Finding(path, message)]
    else:
        return None, [Finding(path, f"a layer is a kind name or {{kind: {{params}}}}, got {type(raw).__name__} {raw!r}")]
    if not isinstance(kind, str):
        return None, [Finding(path + (kind,), f"a kind must be a name, got {kind!r}", on_key=True)]
    written = kind
    if kind.startswith(TIMM_PREFIX):  # timm's attention names: a netspec kind with timm's defaults
        resolved = resolve_timm(kind, params)
        if isinstance(resolved, str):
            return None, [Finding(path + (kind,), resolved, on_key=True)]
        kind, params = resolved
    cls = KINDS.get(kind)
    if cls is None:
        choices = kinds_of(role) if role else sorted(KINDS)
        hint = suggest(kind, choices) if kind in FAILED_PLUGINS else did_you_mean(kind, choices)
        if not hint and role is not None:
            hint = f"; {_role_name(role)} is one of {', '.join(choices)}"
        return None, [Finding(path + (written,), f"unknown kind {kind!r}{hint}", on_key=True)]
    if role is not None and not cls.fills(role):
        message = f"{kind!r} is not {_role_name(role)}; choose from {', '.join(kinds_of(role))}"
        return None, [Finding(path + (written,), message, on_key=True)]
    if params is None:
        params = {}
    if not isinstance(params, dict):
        message = f"params of {kind!r} must be a mapping {{name: value}}, got {type(params).__name__} {params!r}"
        return None, [Finding(path + (written,), message)]
    findings: list[Finding] = []
    params = dict(params)
    for key in WIRING.values():
        if key in params:
            message = f"`{key}` goes beside the kind, not in its params: `- {kind}: {{...}}` then `  {key}: ...`"
            findings.append(Finding(path + (written, key), message, on_key=True))
            del params[key]
    for name, field_role in entry_fields(cls).items():
        if name in params and params[name] is not None and not isinstance(params[name], Layer):
            nested, nested_findings = parse_entry(params[name], path + (written, name), role=field_role)
            findings += nested_findings
            if nested is None:
                del params[name]
            else:
                params[name] = nested
    wiring_findings: list[Finding] = []
    if wiring:
        try:
            _WIRING_CHECK.model_validate({python: wiring[key] for python, key in WIRING.items() if key in wiring})
        except ValidationError as error:
            wiring_findings = _wiring_findings(error, wiring, path)
    if wiring_findings:
        return None, findings + wiring_findings
    try:
        layer = cls.model_validate({**params, **wiring})
    except ValidationError as error:
        return None, findings + findings_from_validation(error, path + (written,), cls)
    return (layer if not findings else None), findings


def _wiring_findings(error: ValidationError, wiring: dict[str, Any], path: Path) -> list[Finding]:
    """One finding per bad `name`/`from` (or per bad name in a `from` list), not pydantic's one per union branch."""
    findings: dict[Path, Finding] = {}
    for item in error.errors(include_url=False):
        field_name = WIRING.get(str(item["loc"][0]), str(item["loc"][0]))
        indices = tuple(part for part in item["loc"][1:] if isinstance(part, int))
        if "pattern" in item["type"]:
            where = path + (field_name, *indices)
            findings[where] = Finding(where, f"{NAME_RULE} (got {short(item.get('input'))})")
        elif field_name == "from":
            where = path + ("from",)
            findings.setdefault(where, Finding(where, "`from` is an earlier entry's name (or `input`), or a list of "
                                                      f"names for a merge (got {short(wiring['from'])})"))
        else:
            where = path + (field_name,)
            findings.setdefault(where, Finding(where, f"{item['msg'][:1].lower()}{item['msg'][1:]} "
                                                      f"(got {short(item.get('input'))})"))
    pattern_paths = {where[:len(path) + 1] for where, finding in findings.items() if NAME_RULE in finding.message}
    return [finding for where, finding in findings.items() if where not in pattern_paths or NAME_RULE in finding.message]


class _Wiring(BaseModel):
    """Validates ``name``/``from`` alone, so their problems are located beside the kind, not in its params."""

    model_config = ConfigDict(extra="forbid")

    name: EntryName | None = None
    inputs: EntryInputs | None = None


_WIRING_CHECK = _Wiring

