"""The JSON Schema of a YAML spec, built from the registry, so that plugins and new kinds appear in it by themselves.

Editors that speak JSON Schema (VS Code with the YAML extension, JetBrains, Neovim via yaml-language-server)
then complete kind names and params, show their documentation and underline mistakes. Each layer entry is
*one of* a bare kind name (kinds whose params all have defaults) or a one-key mapping ``{kind: params}``
(``{kind: null}`` too when no param is required); nested entries such as a stage's ``attention`` accept the
kinds of their role only. The schema is JSON Schema draft-07, what yaml-language-server implements.

``netspec schema`` prints it; ``netspec schema --builtin > netspec.schema.json`` regenerates the committed file.
"""
from __future__ import annotations

import json
import warnings
import weakref
from typing import TYPE_CHECKING, Any, Mapping

from pydantic import BaseModel

from netspec.blocks.base import builtin_blocks_only
from netspec.parsing import entry_fields
from netspec.registry import KINDS, PluginWarning, is_builtin
from netspec.scaling import scaled_fields

if TYPE_CHECKING:
    from netspec.layers.base import Layer

DRAFT = "http://json-schema.org/draft-07/schema#"

PARAM_DOCS: dict[str, str] = {
    # The spec's own fields.
    "name": "name of the network (shown in the summary)",
    "input": "the input tensor: channels and (optionally) the spatial size",
    "defaults": "norm and activation inherited by every conv-like layer that does not set its own",
    "scale": "width/depth multipliers, as Ultralytics' model scales (n/s/m/l/x)",
    "layers": "the layers in order; each takes its input from the one before, or from the entries `from` names",
    "outputs": "the entries the model returns, in order (several: a tuple); default: the last entry",
    "define": "named sub-graphs, each written once and used by `repeat:` entries with their own inputs",
    "channels": "channels of the input tensor (3 for RGB images)",
    "size": "input height and width: [H, W], or one int for a square; leave out if unknown (MACs are then '?')",
    # Params shared by many kinds: the same name means the same thing everywhere.
    "out": "output channels",
    "kernel": "kernel (window) size",
    "stride": "stride",
    "padding": "zero padding on each side",
    "dilation": "spacing between kernel elements",
    "groups": "grouped convolution: channels are split into this many groups",
    "bias": "add a learnable bias",
    "norm": "normalisation after each conv (default: the spec's `defaults.norm`)",
    "act": "activation after each conv (default: the spec's `defaults.act`)",
    "reduction": "reduction ratio r: the hidden layer has channels / r units",
    "block": "block type (a registered block): plain (two 3x3, no shortcut), basic (two 3x3), bottleneck (1x1, 3x3, "
             "1x1), inverted (MobileNet's inverted residual: 1x1 expansion, depthwise conv, linear 1x1 projection), "
             "fused (EfficientNetV2's Fused-MBConv), regnet (RegNet's group-width bottleneck), convnext (depthwise "
             "7x7, LayerNorm, MLP, layer scale), or a plugin's",
    "depth": "number of blocks",
    "width": "channels inside each block; default out/4 for bottleneck, out otherwise; inverted: the expanded channels",
    "attention": "attention kind applied in each block before the residual addition (e.g. se, cbam); inverted: after "
                 "the depthwise conv",
    "conv": "kind that replaces each block's strided 3x3 conv (e.g. sk for SKNet)",
    "p": "probability that an element is zeroed",
}
"""Descriptions of params by name, used when a kind does not describe a param itself (``Field(description=...)``
or a docstring under the field)."""

_SCALED_NOTE = {"channels": "; multiplied by `scale.width`", "depth": "; multiplied by `scale.depth`"}


def spec_schema(kinds: Mapping[str, "type[Layer]"] | None = None) -> dict[str, Any]:
    """The JSON Schema (draft-07) of a spec whose layers may be any of ``kinds`` (default: every registered kind);
    a stage's `block` lists the registered blocks (only the built-in ones when every kind given is built in)."""
    chosen = dict(sorted((KINDS if kinds is None else kinds).items()))
    with builtin_blocks_only(kinds is not None and all(is_builtin(cls) for cls in chosen.values())):
        return _spec_schema(chosen)


def _spec_schema(chosen: dict[str, "type[Layer]"]) -> dict[str, Any]:
    from netspec.spec import Spec

    schema = _model_schema(Spec, "")
    definitions: dict[str, Any] = schema.pop("definitions")
    definitions.pop("Layer", None)
    roles: set[str] = set()
    for kind, cls in chosen.items():
        params = _plugin_model_schema(cls, f"kind.{kind}.", f"netspec plugin kind {kind!r}")
        if params is None:  # a plugin's param type that JSON Schema cannot express: any mapping
            params = {"type": "object", "description": cls.describe(), "properties": {}, "definitions": {}}
        _add_further_params(kind, cls, params)
        for wiring in ("name", "from", "inputs"):  # written beside the kind: in the entry's schema, not its params
            params["properties"].pop(wiring, None)
        if "required" in params:
            params["required"] = [name for name in params["required"] if name in params["properties"]]
        for name, role in entry_fields(cls).items():
            if name not in params["properties"]:
                continue
            roles.add(role)
            params["properties"][name] = {
                "description": params["properties"][name].get("description", ""),
                "anyOf": [{"$ref": f"#/definitions/entry.{role}"}, {"type": "null"}],
                "default": None,
            }
        definitions.update(_reachable(params, params.pop("definitions")))
        definitions[f"kind.{kind}"] = params
    definitions["entry"] = _entry_schema(chosen, "a layer: a kind name, or {kind: {params}} (with `name`, `from`)",
                                         wiring=True)
    definitions["item"] = {  # an item of `layers`: `repeat: NAME` (netspec.repeat) is an instance, else an entry
        "description": "an entry of `layers`: a layer, or `repeat: DEFINITION` (with `name`, `from`)",
        "if": {"type": "object", "required": ["repeat"]},
        "then": {"$ref": "#/definitions/Instance"},
        "else": {"$ref": "#/definitions/entry"},
    }
    definitions["Definition"]["properties"]["layers"]["items"] = {"$ref": "#/definitions/item"}
    for role in sorted(roles):
        fitting = {kind: cls for kind, cls in chosen.items() if _fills(cls, role)}
        definitions[f"entry.{role}"] = _entry_schema(fitting, f"a kind of role {role!r}: a name, or {{kind: {{params}}}}")
    schema["properties"]["layers"] = {
        "description": PARAM_DOCS["layers"],
        "type": "array",
        "minItems": 1,
        "items": {"$ref": "#/definitions/item"},
    }
    schema["definitions"] = dict(sorted(definitions.items()))
    return _draft7({
        "$schema": DRAFT,
        "title": "netspec spec",
        "description": "A network for netspec (format version 1): input, optional defaults and scale, then layers. "
                       "Generated by `netspec schema`.",
        **{key: value for key, value in schema.items() if key not in ("title", "description")},
    })


def _plugin_model_schema(model: Any, prefix: str, who: str) -> dict[str, Any] | None:
    """``_model_schema(model, prefix)``; for a plugin's model JSON Schema cannot express, a warning naming ``who``
    and ``None`` (a built-in's error is raised)."""
    try:
        return _model_schema(model, prefix)
    except Exception as error:
        if is_builtin(model):
            raise
        warnings.warn(f"{who}: no JSON Schema for its params ({error})", PluginWarning)
        return None


def _add_further_params(kind: str, cls: "type[Layer]", params: dict[str, Any]) -> None:
    """List the fields of ``cls.further_params()`` (a stage's blocks' own params) among the kind's properties, each
    described as whose it is (``convnext: ...``); a name two of them declare accepts either's values."""
    further = getattr(cls, "further_params", None)
    for owner, model in (further() if callable(further) else {}).items():
        extra = _plugin_model_schema(model, f"kind.{kind}.{owner}.", f"netspec plugin {owner!r} of {kind}")
        if extra is None:  # a plugin's param type that JSON Schema cannot express: left out
            continue
        for name, prop in extra["properties"].items():
            text = prop.get("description", "")
            prop["description"] = f"{owner}: {text}" if text else f"{owner} only"
            existing = params["properties"].get(name)
            params["properties"][name] = prop if existing is None else {
                "anyOf": [existing, prop], "description": f"{existing.get('description', '')}; {prop['description']}"}
        params.setdefault("definitions", {}).update(extra.get("definitions", {}))


def schema_text(kinds: Mapping[str, "type[Layer]"] | None = None) -> str:
    """:func:`spec_schema` as the text ``netspec schema`` prints (and ``netspec.schema.json`` holds)."""
    return json.dumps(spec_schema(kinds), indent=2, ensure_ascii=False) + "\n"


def param_description(cls: type[BaseModel], name: str) -> str:
    """What param ``name`` of ``cls`` means: its own description (``Field(description=...)`` or a docstring under
    the field), else the shared one in :data:`PARAM_DOCS`."""
    document_fields(cls)
    info = cls.model_fields[name]
    text = info.description or PARAM_DOCS.get(name, "")
    by = scaled_fields(cls).get(name)
    return text + (_SCALED_NOTE[by] if by and text else "")


_DOCUMENTED: "weakref.WeakSet[type]" = weakref.WeakSet()


def document_fields(cls: type[BaseModel]) -> None:
    """Give each field of ``cls`` without a ``description`` the docstring written under it, as pydantic's
    ``use_attribute_docstrings`` would, but on demand (``netspec schema``, ``netspec blocks``): doing it when the
    class is created parses the source of every kind at ``import netspec`` (a third of ``netspec check``'s time).
    """
    if cls in _DOCUMENTED:
        return
    _DOCUMENTED.add(cls)
    changed = False
    for name, text in attribute_docstrings(cls).items():
        info = cls.model_fields.get(name)
        if info is not None and info.description is None:
            info.description = text
            changed = True
    if changed and getattr(cls, "__pydantic_complete__", False):
        cls.model_rebuild(force=True)  # its schema was built before: rebuild it with the descriptions


def attribute_docstrings(cls: type) -> dict[str, str]:
    """``{field: docstring}`` for the string literals written right under annotated fields, in ``cls`` and its bases.

    Read on demand (``netspec schema``, ``netspec blocks``) rather than when the class is created, so that
    importing netspec does not parse the source of every kind. Nearer classes win; no source, no docstrings.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass.__module__.startswith("pydantic"):
            continue
        docs.update(_own_attribute_docstrings(klass))
    return docs


def _own_attribute_docstrings(cls: type) -> dict[str, str]:
    import ast
    import inspect
    import textwrap

    try:
        source = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return {}
    body = next((node.body for node in tree.body if isinstance(node, ast.ClassDef)), [])
    docs = {}
    for field, after in zip(body, body[1:]):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[field.target.id] = inspect.cleandoc(after.value.value)
    return docs


def _fills(cls: "type[Layer]", role: str) -> bool:
    fills = getattr(cls, "fills", None)
    return bool(fills(role)) if callable(fills) else cls.role == role


def _has_required(cls: type[BaseModel]) -> bool:
    return any(info.is_required() for info in cls.model_fields.values())


NAME_SCHEMA = {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$", "maxLength": 64}
WIRING_SCHEMA: dict[str, Any] = {
    "name": {**NAME_SCHEMA, "description": "a name other entries can refer to (`from:`, `outputs:`), unique"},
    "from": {
        "description": "input: an earlier entry's name or `input` (default: the entry before); a list for merges",
        "anyOf": [NAME_SCHEMA, {"type": "array", "items": NAME_SCHEMA, "minItems": 1}],
    },
}
"""The graph wiring written beside a top-level entry's kind (DESIGN section 2b)."""


def _entry_schema(kinds: Mapping[str, "type[Layer]"], description: str, *, wiring: bool = False) -> dict[str, Any]:
    bare = [kind for kind, cls in kinds.items() if not _has_required(cls)]
    mapping: dict[str, Any] = {}
    for kind, cls in kinds.items():
        ref = {"$ref": f"#/definitions/kind.{kind}"}
        value: dict[str, Any] = {"description": cls.describe()}
        if _has_required(cls):
            value["allOf"] = [ref]
        else:
            value["anyOf"] = [ref, {"type": "null"}]
        mapping[kind] = value
    branches: list[dict[str, Any]] = []
    if bare:
        branches.append({"type": "string", "enum": bare, "description": "a kind with every param at its default"})
    entry: dict[str, Any] = {
        "type": "object",
        "description": "{kind: {params}}: exactly one kind",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": mapping,
    }
    if wiring:  # `name` and/or `from` beside the kind: exactly one key more than the wiring given
        with_name, with_from = {"required": ["name"]}, {"required": ["from"]}
        entry["description"] = "{kind: {params}}: exactly one kind, optionally with `name` and `from` beside it"
        entry["properties"] = {**mapping, **WIRING_SCHEMA}
        entry["not"] = {"propertyNames": {"enum": list(WIRING_SCHEMA)}, "minProperties": 1}  # some key is a kind
        entry["maxProperties"] = 1 + len(WIRING_SCHEMA)
        entry["if"] = {"allOf": [with_name, with_from]}
        entry["then"] = {"maxProperties": 3}
        entry["else"] = {"if": {"anyOf": [with_name, with_from]}, "then": {"maxProperties": 2},
                         "else": {"maxProperties": 1}}
    branches.append(entry)
    return {"description": description, "oneOf": branches}


def _model_schema(model: type[BaseModel], prefix: str) -> dict[str, Any]:
    """Pydantic's schema of ``model`` in draft-07 form, nested models under ``definitions`` named ``prefix + Model``."""
    document_fields(model)
    raw = model.model_json_schema(ref_template=f"#/definitions/{prefix}{{model}}")
    nested = {f"{prefix}{name}": _draft7(value) for name, value in raw.pop("$defs", {}).items()}
    schema = _draft7(raw)
    for definition in [schema, *nested.values()]:
        _describe_properties(definition, model if definition is schema else None)
    if isinstance(model, type) and hasattr(model, "paper") and getattr(model, "paper"):
        schema["description"] = f"{schema.get('description', '')}\n\nPaper: {model.paper}".strip()
    schema["definitions"] = nested
    return schema


def _describe_properties(schema: dict[str, Any], model: type[BaseModel] | None) -> None:
    for name, prop in schema.get("properties", {}).items():
        prop.pop("title", None)
        if model is not None and name in model.model_fields:
            text = param_description(model, name)
        else:
            text = prop.get("description") or PARAM_DOCS.get(name, "")
        if text:
            prop["description"] = text


_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")


def _draft7(node: Any) -> Any:
    """Rewrite pydantic's draft 2020-12 output as draft-07: tuples as ``items`` lists, ``$ref`` alone in its object."""
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS:
            result[key] = {name: _draft7(item) for name, item in value.items()}
        elif key in _SCHEMA_LISTS:
            result[key] = [_draft7(item) for item in value]
        elif key in _SCHEMA_VALUES:
            result[key] = _draft7(value)
        else:
            result[key] = value
    if "prefixItems" in result:
        result["items"] = result.pop("prefixItems")
        result.setdefault("additionalItems", False)
    if "$ref" in result and len(result) > 1:  # draft-07 ignores a $ref's siblings: move the ref into allOf
        result = {"allOf": [{"$ref": result.pop("$ref")}], **result}
    return result


def _reachable(root: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The ``definitions`` that ``root`` refers to, directly or through each other (pydantic's leftovers dropped)."""
    kept: dict[str, Any] = {}
    pending = [root]
    while pending:
        text = json.dumps(pending.pop())
        for name, value in definitions.items():
            if name not in kept and f'"#/definitions/{name}"' in text:
                kept[name] = value
                pending.append(value)
    return kept


if __name__ == "__main__":  # python -m netspec.schema: the same as `netspec schema`
    print(schema_text(), end="")
