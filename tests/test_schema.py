"""Issue: ecosystem. `netspec schema`: the JSON Schema of the real YAML, built from the registry, committed and enforced."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import netspec
from netspec import cli
from netspec.parsing import entry_fields, kinds_of
from netspec.registry import KINDS, builtin_kinds
from netspec.schema import schema_text, spec_schema
from netspec.shapes import Shape

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "netspec.schema.json"
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
HEADER = "# yaml-language-server: $schema=../netspec.schema.json"
REGENERATE = "netspec schema --builtin > netspec.schema.json"


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(committed: dict[str, Any]) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(committed)


def errors(validator: jsonschema.Draft7Validator, text: str) -> list[str]:
    return [error.message for error in validator.iter_errors(yaml.safe_load(text))]


# -- the committed file ---------------------------------------------------------------------------------


def test_committed_schema_is_up_to_date() -> None:
    live = schema_text(builtin_kinds())
    assert SCHEMA_FILE.read_text(encoding="utf-8") == live, f"netspec.schema.json is stale: run `{REGENERATE}`"


def test_schema_is_valid_draft7(committed: dict[str, Any]) -> None:
    jsonschema.Draft7Validator.check_schema(committed)
    assert committed["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_cli_prints_the_live_schema(capsys: pytest.CaptureFixture[str], committed: dict[str, Any]) -> None:
    assert cli.main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == spec_schema()
    assert cli.main(["schema", "--builtin"]) == 0
    assert capsys.readouterr().out == SCHEMA_FILE.read_text(encoding="utf-8")


# -- specs/ -----------------------------------------------------------------------------------------------


def test_there_are_specs() -> None:
    assert len(SPECS) >= 3


@pytest.mark.parametrize("path", SPECS, ids=lambda path: path.name)
def test_every_spec_points_editors_at_the_schema(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == HEADER, f"{path.name} must start with `{HEADER}`"


@pytest.mark.parametrize("path", SPECS, ids=lambda path: path.name)
def test_every_spec_validates_against_the_schema(path: Path, validator: jsonschema.Draft7Validator) -> None:
    assert errors(validator, path.read_text(encoding="utf-8")) == []
    netspec.load(path)  # and netspec agrees


# -- broken specs fail it, as they fail netspec -------------------------------------------------------------

GOOD = "input: {channels: 3, size: 32}\nlayers:\n  - conv: {out: 16}\n  - {layer}\n"

BROKEN = {
    "unknown kind": ("sqe", "'sqe' is not one of"),
    "unknown field": ("conv: {out: 8, kernal: 3}", "'kernal' was unexpected"),
    "wrong type": ("conv: {out: '8'}", "'8' is not of type 'integer'"),
    "bool for int": ("conv: {out: true}", "True is not of type 'integer'"),
    "out of range": ("conv: {out: 0}", "0 is less than the minimum of 1"),
    "bad enum": ("conv: {out: 8, act: relu7}", "'relu7' is not one of"),
    "required param missing (bare)": ("conv", "'conv' is not one of"),
    "required param missing (null)": ("conv: null", "None is not of type 'object'"),
    "required param missing (mapping)": ("conv: {kernel: 3}", "'out' is a required property"),
    "two kinds in one entry": ("{se: null, eca: null}", "has too many properties|is not valid under any of the given schemas"),
    "empty entry": ("{}", "should be non-empty|does not have enough properties"),
    "not an attention kind": ("stage: {out: 16, attention: conv}", "'conv' is not one of"),
    "unknown attention field": ("stage: {out: 16, attention: {se: {ratio: 4}}}", "'ratio' was unexpected"),
    "params not a mapping": ("se: 16", "16 is not valid under any of the given schemas"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_layer_fails_the_schema_and_netspec(name: str, validator: jsonschema.Draft7Validator) -> None:
    layer, expected = BROKEN[name]
    text = GOOD.replace("{layer}", layer)
    assert errors(validator, text), f"the schema accepts {layer!r}"
    best = jsonschema.exceptions.best_match(validator.iter_errors(yaml.safe_load(text)))
    assert re.search(expected, best.message), best.message
    with pytest.raises(netspec.SpecError):
        netspec.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "input: {channels: 3}\nlayers: []\n",
        "input: {channels: 3}\n",
        "layers: [se]\n",
        "input: {channels: 3, size: [1, 2, 3]}\nlayers: [se]\n",
        "input: {channels: 3}\nlayers: [se]\nlayres: [se]\n",
        "input: {channels: 3}\ndefaults: {norm: group}\nlayers: [se]\n",
        "input: {channels: 3}\nscale: {width: 0}\nlayers: [se]\n",
        "input: {channels: 3}\nscale: {widht: 0.5}\nlayers: [se]\n",
    ],
)
def test_a_broken_top_level_fails_the_schema_and_netspec(text: str, validator: jsonschema.Draft7Validator) -> None:
    assert errors(validator, text)
    with pytest.raises(netspec.SpecError):
        netspec.loads(text)


@pytest.mark.parametrize(
    "layer", ["se", "se: null", "se: {}", "se: {reduction: 4}", "stage: {out: 16, attention: cbam}",
              "stage: {out: 16, attention: {eca: null}}", "avgpool", "dropout: {p: 0.1}"],
)
def test_valid_spellings_pass(layer: str, validator: jsonschema.Draft7Validator) -> None:
    text = GOOD.replace("{layer}", layer)
    assert errors(validator, text) == []
    netspec.loads(text)


def test_input_size_as_one_int_or_a_pair_and_a_scale_pass(validator: jsonschema.Draft7Validator) -> None:
    for size in ("224", "[224, 160]", "null"):
        assert errors(validator, f"input: {{channels: 3, size: {size}}}\nlayers: [se]\n") == []
    assert errors(validator, "input: {channels: 3}\nscale: {width: 0.5, depth: 0.33, max_channels: 1024}\n"
                             "layers: [se]\n") == []


# -- built from the registry: every kind, every param, documented ------------------------------------------


def entry_kinds(schema: dict[str, Any], definition: str) -> tuple[set[str], set[str]]:
    """(bare kind names, mapping kind names) accepted by an entry definition."""
    bare: set[str] = set()
    mapping: set[str] = set()
    for branch in schema["definitions"][definition]["oneOf"]:
        if branch["type"] == "string":
            bare |= set(branch["enum"])
        else:
            mapping |= set(branch["properties"]) - {"name", "from"}  # the graph wiring beside the kind
    return bare, mapping


def test_every_kind_is_an_entry_and_bare_only_without_required_params() -> None:
    schema = spec_schema()
    bare, mapping = entry_kinds(schema, "entry")
    assert mapping == set(KINDS)
    assert bare == {kind for kind, cls in KINDS.items() if not any(f.is_required() for f in cls.param_fields().values())}


def test_nested_entry_fields_accept_only_their_role() -> None:
    schema = spec_schema()
    roles = {role for cls in KINDS.values() for role in entry_fields(cls).values()}
    assert "attention" in roles
    for role in roles:
        bare, mapping = entry_kinds(schema, f"entry.{role}")
        assert mapping == set(kinds_of(role)), role
    stage = schema["definitions"]["kind.stage"]["properties"]["attention"]
    assert {"$ref": "#/definitions/entry.attention"} in stage["anyOf"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_param_is_described_with_its_default(kind: str) -> None:
    cls = KINDS[kind]
    params = spec_schema()["definitions"][f"kind.{kind}"]
    further = {name: info for model in cls.further_params().values() for name, info in model.model_fields.items()}
    assert set(params["properties"]) == set(cls.param_fields()) | set(further)  # a stage's: its blocks' own params
    assert params["additionalProperties"] is False
    assert params.get("description"), f"{kind} has no docstring"
    assert set(params.get("required", [])) == {n for n, f in cls.param_fields().items() if f.is_required()}
    for name, info in {**further, **cls.param_fields()}.items():
        prop = params["properties"][name]
        assert prop.get("description"), f"{kind}.{name} has no description: give it a Field(description=...)"
        if not info.is_required():
            default = info.get_default(call_default_factory=True)
            assert prop["default"] == (default.to_entry() if hasattr(default, "to_entry") else default), name


def test_param_details_match_the_models() -> None:
    definitions = spec_schema()["definitions"]
    conv = definitions["kind.conv"]["properties"]
    assert conv["out"]["minimum"] == 1 and conv["out"]["type"] == "integer"
    assert "multiplied by `scale.width`" in conv["out"]["description"]
    assert conv["kernel"]["default"] == 3
    assert "relu" in conv["act"]["anyOf"][0]["enum"]
    assert definitions["kind.stage"]["properties"]["block"]["enum"] == [
        "plain", "basic", "bottleneck", "inverted", "fused", "regnet", "convnext"]
    assert "multiplied by `scale.depth`" in definitions["kind.stage"]["properties"]["depth"]["description"]
    assert "scale" not in definitions["kind.linear"]["properties"]["out"]["description"]
    assert definitions["kind.dropout"]["properties"]["p"] == {
        "default": 0.5, "maximum": 1.0, "minimum": 0.0, "type": "number",
        "description": "probability that an element is zeroed",
    }
    assert "Paper: Hu, Shen, Sun" in definitions["kind.se"]["description"]


def test_no_ref_has_siblings_and_every_ref_resolves() -> None:
    schema = spec_schema()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                assert set(node) == {"$ref"}, node  # draft-07 ignores a $ref's siblings
                assert node["$ref"].removeprefix("#/definitions/") in schema["definitions"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)


# -- the schema accepts whatever the kinds' own strategies generate ------------------------------------------

INPUTS = [Shape(16, 8, 8), Shape(32, 12, 12), Shape(16, flat=True)]


@pytest.fixture(scope="module")
def live_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(spec_schema())


@pytest.mark.parametrize("kind", sorted(KINDS))
@given(data=st.data())
def test_the_schema_accepts_every_valid_layer(kind: str, data: st.DataObject,
                                              live_validator: jsonschema.Draft7Validator) -> None:
    cls = KINDS[kind]
    shapes = [shape for shape in INPUTS if cls.accepts(shape)]
    if not shapes:
        return
    shape = data.draw(st.sampled_from(shapes))
    layer = data.draw(cls.strategy(shape))
    size = None if shape.flat else [shape.height, shape.width]
    before = [] if not shape.flat else [{"conv": {"out": 16}}, "avgpool"]
    document = {"input": {"channels": shape.channels if not shape.flat else 3, "size": size or [8, 8]},
                "layers": [*before, layer.to_entry()]}
    assert [error.message for error in live_validator.iter_errors(document)] == []
