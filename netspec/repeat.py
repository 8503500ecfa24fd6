"""``define:`` and ``repeat:``: a named sub-graph written once and instantiated several times with other inputs.

A BiFPN layer, an HRNet exchange unit or a decoder step is the same few entries again and again on different
tensors. ``define:`` names such a sub-graph, with its formal ``inputs`` and its ``outputs``; an entry
``repeat: NAME`` (with ``name:`` and ``from:`` beside it, as any entry) instantiates it::

    define:
      fuse:
        inputs: [high, low]            # the instance's `from:` list, in this order
        layers:
          - upsample: {to: high}
            from: low
          - add: {}
            from: [high, upsample1]
          - conv: {out: 32}
        outputs: [conv1]               # default: the last entry
    layers:
      - ...
      - repeat: fuse
        from: [c3, c4]
        name: p3                       # p3 reads its single output; entries inside are p3_upsample1, p3_add1, ...

The instances are expanded into plain entries before inference (:mod:`netspec.entries`), so shapes, the
summary, the drawing, scaling, building and weights see ordinary entries, named ``<instance>_<entry>``.
This module holds the two models and the parsing of a list item that may be either.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, ValidationError

from netspec.errors import Finding, Path, format_path
from netspec.layers.base import MAX_INPUTS, EntryInputs, EntryName, Layer, _plain
from netspec.messages import SpecModel, findings_from_validation
from netspec.parsing import parse_entry

REPEAT = "repeat"
"""The key of an instance entry (``- repeat: NAME``); no kind can be called so."""

INSTANCE_KEYS = (REPEAT, "name", "from")


class Instance(SpecModel):
    """``repeat: NAME``: the sub-graph ``define.NAME``, its inputs taken from ``from:`` (default: the entry before)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_by_name=True, validate_by_alias=True)

    kind: ClassVar[str] = REPEAT

    repeat: EntryName = Field(description="the definition (a key of `define`) this entry instantiates")
    name: EntryName | None = Field(None, description="the instance's name: the prefix of its entries' names, and "
                                                     "the name of its output (`NAME_OUTPUT` for each of several)")
    inputs: EntryInputs | None = Field(
        None, alias="from", description="the tensors bound to the definition's `inputs`, in order (default: the "
                                        "entry before, for a definition of one input)")

    @property
    def wired(self) -> bool:
        return True  # an instance makes its spec a graph

    def automatic_base(self) -> str:
        """The stem of the automatic name (``fuse`` -> ``fuse1``, ``fuse2``; ``up2`` -> ``up2_1``)."""
        return f"{self.repeat}_" if self.repeat[-1:].isdigit() else self.repeat

    def to_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {REPEAT: self.repeat}
        if self.name is not None:
            entry["name"] = self.name
        if self.inputs is not None:
            entry["from"] = _plain(self.inputs)
        return entry


Item = Layer | Instance
"""A list item of ``layers`` (or of a definition's ``layers``): an entry of a kind, or an instance."""


def parse_item(raw: Any, path: Path) -> tuple[Item | None, list[Finding]]:
    """Validate one list item: ``{repeat: NAME, name, from}`` is an :class:`Instance`, anything else an entry."""
    if isinstance(raw, (Instance, Layer)):
        return raw, []
    if raw == REPEAT or (isinstance(raw, dict) and raw.get(REPEAT, "") is None):
        return None, [Finding(path + ((REPEAT,) if isinstance(raw, dict) else ()),
                              "`repeat` names the definition it instantiates: `- repeat: NAME` (a key of `define`)")]
    if not (isinstance(raw, dict) and REPEAT in raw):
        return parse_entry(raw, path)
    findings = [Finding(path + (key,), f"unknown field {key!r} beside `repeat`: an instance has only "
                                       "`repeat`, `name` and `from` (its entries are in its definition)", on_key=True)
                for key in raw if key not in INSTANCE_KEYS]
    if findings:
        return None, findings
    try:
        return Instance.model_validate(raw), []
    except ValidationError as error:
        return None, findings_from_validation(error, path, Instance)


def parse_items(value: Any, where: Path) -> Any:
    """``value`` with each item parsed (pydantic's before-validator of a list of items); problems as one message."""
    if not isinstance(value, list):
        return value
    items = []
    for index, raw in enumerate(value):
        item, findings = parse_item(raw, where + (index,))
        if findings:
            raise ValueError("; ".join(f"{format_path(f.path)}: {f.message}" for f in findings))
        items.append(item)
    return items


def _unique(names: list[str]) -> list[str]:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"each input needs its own name: {', '.join(map(repr, repeated))} is listed twice")
    return names


class Definition(SpecModel):
    """A sub-graph written once: its formal ``inputs``, its ``layers`` (reading those names) and its ``outputs``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    inputs: Annotated[list[EntryName], Field(min_length=1, max_length=MAX_INPUTS), AfterValidator(_unique)] = Field(
        description="names its entries read the instance's inputs by (the instance's `from:` list, in this order); "
                    "the first entry reads the first one by default")
    layers: Annotated[list[Item], BeforeValidator(lambda value: parse_items(value, ("layers",))),
                      Field(min_length=1)] = Field(description="its entries, as in the spec's `layers`")
    outputs: Annotated[list[EntryName], Field(min_length=1, max_length=MAX_INPUTS)] | None = Field(
        None, description="the entries an instance outputs, in order (default: the last entry); one output is "
                          "read by the instance's name, each of several by `INSTANCE_OUTPUT`")

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"inputs": list(self.inputs), "layers": [item.to_entry() for item in self.layers]}
        if self.outputs is not None:
            data["outputs"] = list(self.outputs)
        return data
