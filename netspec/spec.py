"""The spec: input, defaults and layers; loading from YAML with located errors, dumping back to YAML."""
from __future__ import annotations

import os
import re
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, \
    field_validator

from netspec.compiler import analyse
from netspec.entries import flatten, instances_written, with_instances
from netspec.errors import Finding, Problem, SpecError, format_path
from netspec.layers.base import NAME_RULE, EntryName, Layer, PositiveInt, Probability
from netspec.messages import SpecModel, findings_from_validation
from netspec.repeat import Definition, Item, parse_item, parse_items
from netspec.ops import ActName, NormEps, NormMomentum, NormName
from netspec.scaling import Scale, ScaleName
from netspec.source import Mark, Source, gc_paused, parse_yaml, read_limited


def _square(value: Any) -> Any:
    return [value, value] if type(value) is int else value


class Input(SpecModel):
    """The input tensor: channels, and optionally the spatial size (an int means square)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    channels: PositiveInt
    size: Annotated[
        tuple[PositiveInt, PositiveInt] | None,
        BeforeValidator(_square, json_schema_input_type=PositiveInt | tuple[PositiveInt, PositiveInt] | None),
    ] = None


class Defaults(SpecModel):
    """Norm and activation inherited by every conv-like layer that does not set its own; norm settings for all."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    norm: NormName = "batch"
    act: ActName = "relu"
    eps: NormEps | None = Field(None, description="eps of every batch and instance norm layer (Ultralytics: 0.001); "
                                                  "default: each kind's own (`norm: layer` keeps timm's 1e-6)")
    momentum: NormMomentum | None = Field(
        None, description="momentum of every batch and instance norm layer's running statistics (Ultralytics: 0.03); "
                          "default: each kind's own"
    )


def _layer_entries(value: Any) -> Any:
    return parse_items(value, ("layers",))


def _text(value: Any) -> Any:
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"character U+{ord(value[error.start]):04X} is not valid Unicode text (a lone surrogate), "
                             "so the spec could not be written as YAML") from None
    return value


class Spec(SpecModel):
    """A whole network: ``netspec.loads(spec.to_yaml()) == spec``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: Annotated[str, AfterValidator(_text)] | None = None
    input: Input
    defaults: Defaults = Field(default_factory=Defaults)
    scales: dict[ScaleName, Scale] | None = Field(
        None, description="named scales (Ultralytics' n/s/m/l/x table), one of which `scale: NAME` selects"
    )
    scale: Scale | ScaleName | None = Field(
        None, description="width/depth scaling: `{width, depth, max_channels}`, or the name of a `scales:` row"
    )
    drop_path: Probability = Field(
        0.0, description="stochastic depth rate (timm's drop_path_rate, torchvision's stochastic_depth_prob): block i of "
                         "the network's N stage blocks drops its residual branch with probability rate * i / N "
                         "(convnext and regnet blocks: rate * i / (N - 1), timm's linspace to the rate)"
    )
    define: dict[EntryName, Definition] | None = Field(
        None, description="named sub-graphs, each written once and used by `repeat:` entries with their own inputs"
    )
    layers: Annotated[list[Item], BeforeValidator(_layer_entries), Field(min_length=1)]
    outputs: Annotated[list[EntryName], Field(min_length=1)] | None = Field(
        None, description="the entries the model returns, in order (several: a tuple); default: the last entry"
    )
    features: Annotated[list[EntryName], Field(min_length=1)] | None = Field(
        None, description="feature points for backbone use (netspec.timm's feature_info, forward_intermediates), "
                          "in order; default: at each reduction, the last stage (else the last entry) before the head"
    )

    _source: Source | None = PrivateAttr(default=None)

    @field_validator("scale", mode="wrap")
    @classmethod
    def _scale_in_table(cls, value: Any, handler: Any, info: ValidationInfo) -> Scale | str | None:
        if not isinstance(value, str):  # a mapping: validated as a Scale alone (one message, not one per union member)
            return Scale.model_validate(value) if value is not None and not isinstance(value, Scale) else value
        value = handler(value)
        if isinstance(value, str):
            scales = info.data.get("scales")
            if not scales:
                raise ValueError(f"scale {value!r} names a row of `scales:`, which the spec does not have")
            if value not in scales:
                raise ValueError(f"unknown scale {value!r}; `scales:` has {', '.join(scales)}")
        return value

    @property
    def resolved_scale(self) -> Scale | None:
        """The scale applied: ``scale`` itself, or the ``scales:`` row it names (with that row's name)."""
        if isinstance(self.scale, str):
            row = (self.scales or {})[self.scale]
            return row if row.name is not None else row.model_copy(update={"name": self.scale})
        return self.scale

    def at_scale(self, name: str) -> "Spec":
        """A copy scaled by the ``scales:`` row ``name`` (``netspec build --scale s``); a located error otherwise."""
        try:
            return Spec.model_validate({**self.__dict__, "scale": name})
        except ValidationError as error:
            raise SpecError(Problem(f.path, f.message) for f in findings_from_validation(error, (), Spec)) from None

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__dict__ == other.__dict__  # the source file is not part of it

    __hash__ = None  # type: ignore[assignment]

    @property
    def source(self) -> Source | None:
        """Where this spec was read from (for locating problems), ``None`` if built in Python."""
        return self._source

    def locate(self, findings: list[Finding]) -> SpecError:
        """A :class:`SpecError` for ``findings``, with file/line/column when the spec came from YAML."""
        if self._source is None:
            return SpecError(Problem(f.path, f.message) for f in findings)
        return SpecError(self._source.problem(f.path, f.message, on_key=f.on_key) for f in findings)

    def scaled_layers(self) -> list[Layer]:
        """The entries as built, ``repeat:`` instances expanded: ``scale`` applied to their channel and depth params
        (as written when unset)."""
        layers = [entry.layer for entry in flatten(self).entries]
        scale = self.resolved_scale
        return layers if scale is None else [scale.apply(layer) for layer in layers]

    def with_scale(self, *, width: float | None = None, depth: float | None = None) -> "Spec":
        """A copy whose ``scale`` has ``width``/``depth`` overridden (``netspec build --width/--depth``)."""
        overrides = {name: value for name, value in (("width", width), ("depth", depth)) if value is not None}
        try:
            scale = Scale.model_validate({**(self.resolved_scale or Scale()).model_dump(), **overrides})
        except ValidationError as error:
            raise SpecError(Problem(f.path, f.message) for f in findings_from_validation(error, ("scale",), Scale)) from None
        return self.model_copy(update={"scale": scale})

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.name is not None:
            data["name"] = self.name
        data["input"] = self.input.model_dump(mode="json", exclude_none=True)
        defaults = self.defaults.model_dump(mode="json", exclude_defaults=True)
        if defaults:
            data["defaults"] = defaults
        if self.scales is not None:
            data["scales"] = {name: row.model_dump(mode="json", exclude_defaults=True) for name, row in self.scales.items()}
        if isinstance(self.scale, str):
            data["scale"] = self.scale
        elif self.scale is not None:
            data["scale"] = self.scale.model_dump(mode="json", exclude_defaults=True)
        if self.drop_path:
            data["drop_path"] = self.drop_path
        if self.define is not None:
            data["define"] = {name: definition.to_data() for name, definition in self.define.items()}
        data["layers"] = [layer.to_entry() for layer in self.layers]
        if self.outputs is not None:
            data["outputs"] = list(self.outputs)
        if self.features is not None:
            data["features"] = list(self.features)
        return data

    def to_yaml(self) -> str:
        """The spec as YAML text (defaults left out), loadable with :func:`netspec.loads`."""
        return yaml.dump(self.to_data(), Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=100)


class _Dumper(yaml.SafeDumper):
    """Block style at the top, flow style for each layer's params."""


def spec_from_source(source: Source) -> Spec:
    """Validate parsed YAML into a :class:`Spec`, reporting every problem with its location."""
    data = dict(source.data)
    findings: list[Finding] = []
    valid_prefix: list[Item] = []  # the layers before the first one that failed to validate
    broken: set[tuple[str | int, ...]] = set()  # lists whose entries were reported one by one
    if isinstance(data.get("define"), dict):
        data["define"] = dict(data["define"])
        for name in data["define"]:
            if not (isinstance(name, str) and re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", name)):
                findings.append(Finding(("define", name), f"{NAME_RULE}, at most 64 characters (got {name!r})",
                                        on_key=True))
        for name, body in data["define"].items():
            if isinstance(body, dict) and isinstance(body.get("layers"), list):
                where = ("define", name, "layers")
                items, body_findings = _parse_list(body["layers"], where)
                data["define"][name] = {**body, "layers": items}
                findings += body_findings
                broken |= {where} if body_findings else set()
    define_problems = bool(findings)
    before = len(findings)
    if isinstance(data.get("layers"), list):
        layers = []
        for index, entry in enumerate(data["layers"]):
            layer, entry_findings = parse_item(entry, ("layers", index))
            findings += entry_findings
            if layer is not None:
                layers.append(layer)
            if not findings:
                valid_prefix.append(layer)  # type: ignore[arg-type]
        data["layers"] = layers
        broken |= {("layers",)} if len(findings) > before else set()
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        spec = None
        for finding in findings_from_validation(error, (), Spec):
            if any(finding.path[:len(where)] == where for where in broken):  # already reported per entry
                continue
            if finding.path[:1] == ("define",) and "[key]" in finding.path:  # a definition's name: reported above
                continue
            findings.append(finding)
    if any(_in_definition(finding) for finding in findings):
        findings = _naming_instances(findings, source.data)
    if findings and not define_problems:
        findings += _semantic_findings(data, valid_prefix)
    if findings or spec is None:
        findings.sort(key=lambda f: source.locate(f.path, on_key=f.on_key) or Mark(0, 0))
        raise SpecError(source.problem(f.path, f.message, on_key=f.on_key) for f in findings)
    spec._source = source
    return spec


def _in_definition(finding: Finding) -> bool:
    """Whether a problem is inside a definition (not about its name, the key under ``define``)."""
    return finding.path[:1] == ("define",) and len(finding.path) > 1 and not (len(finding.path) == 2 and finding.on_key)


def _naming_instances(findings: list[Finding], data: Any) -> list[Finding]:
    """Problems inside a definition (found as it is validated, before expansion) naming the instances that use it."""
    instances = instances_written(data)
    named = []
    for finding in findings:
        used = instances.get(finding.path[1]) if _in_definition(finding) else None
        named.append(with_instances(finding, *used) if used else finding)
    return named


def _parse_list(raw: list[Any], where: tuple[str | int, ...]) -> tuple[list[Item], list[Finding]]:
    """Each item of a list of entries parsed, with every problem found (the items that did validate, in order)."""
    items, findings = [], []
    for index, entry in enumerate(raw):
        item, item_findings = parse_item(entry, where + (index,))
        findings += item_findings
        if item is not None:
            items.append(item)
    return items, findings


def _semantic_findings(data: dict[str, Any], layers: list[Layer]) -> list[Finding]:
    """Shape problems among the layers that did validate, so that one run reports every mistake."""
    try:
        partial = Spec.model_validate({**data, "layers": layers})
    except ValidationError:
        return []  # input or defaults are broken: shapes cannot be inferred
    try:
        analyse(partial)
    except SpecError as error:
        return [Finding(problem.path, problem.message) for problem in error.problems]
    return []


def loads(text: str | bytes, *, name: str | None = None) -> Spec:
    """Parse and validate a spec from YAML text; ``name`` is the file name used in error messages."""
    with gc_paused():  # thousands of small objects, no cycles to collect: keeps a long spec's time linear
        return spec_from_source(parse_yaml(text, name))


def load(path: str | os.PathLike[str]) -> Spec:
    """Read, parse and validate a YAML spec file."""
    return loads(read_limited(path, "spec"), name=os.fspath(path))

SpecLike = Spec | str | os.PathLike[str]
"""What the functions that take a spec accept: a :class:`Spec`, or the path of a YAML file."""


def as_spec(spec: SpecLike) -> Spec:
    """``spec`` itself, or the spec the YAML file at that path holds (:func:`load`)."""
    return spec if isinstance(spec, Spec) else load(spec)
