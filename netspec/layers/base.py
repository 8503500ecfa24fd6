"""The contract of a layer kind: a pydantic params model that also carries its shape rule and builder.

A kind is one file: subclass :class:`Layer` (or :class:`Attention`), set ``kind`` and ``paper``,
implement ``infer`` (static shape, params, MACs), ``build`` (the ``torch.nn.Module``) and
``strategy`` (hypothesis examples), and decorate with :func:`netspec.register`.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError

from netspec.errors import Finding, Invalid, Path, format_path
from netspec.registry import KINDS, suggest
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

# Field types: strict, so that `out: true`, `out: "64"` or `out: 64.0` are errors, not silently converted.
PositiveInt = Annotated[int, Strict(), Field(ge=1)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
Probability = Annotated[float, Strict(), Field(ge=0.0, le=1.0)]
Flag = Annotated[bool, Strict()]


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError("must be odd, so that padding (k-1)/2 on each side keeps the size")
    return value


OddInt = Annotated[int, Strict(), Field(ge=1), AfterValidator(_odd)]  # a kernel size that keeps the size

Role = Literal["layer", "attention", "conv"]


@dataclass(frozen=True)
class Context:
    """What a shape rule or builder needs besides its own params: inherited defaults and where it is."""

    norm: str = "batch"
    act: str = "relu"
    path: Path = ()
    findings: list[Finding] = field(default_factory=list)
    block_input: int | None = None
    """channels entering the residual block an attention kind sits in (EfficientNet's SE widths); None outside one"""
    drop_path: float = 0.0
    """the spec's stochastic-depth rate (``Spec.drop_path``)"""
    first_block: int = 0
    """blocks of the network before this entry (stage blocks, counted by the stochastic-depth schedule)"""
    total_blocks: int = 0
    """blocks in the whole (scaled) network: the sum of every entry's ``block_count``"""

    def drop_rate(self, block: int) -> float:
        """EfficientNet's stochastic-depth schedule for this entry's ``block``-th block: rate * index / total."""
        return self.drop_path * (self.first_block + block) / self.total_blocks if self.total_blocks else 0.0

    def at(self, *parts: str | int) -> "Context":
        return replace(self, path=self.path + parts)

    def error(self, param: str | None, message: str) -> None:
        """Record a semantic problem with ``param`` (or the layer itself) and carry on inferring."""
        self.findings.append(Finding(self.path + ((param,) if param else ()), message))

    def invalid(self, param: str | None, message: str) -> Invalid:
        """A problem after which no output shape can be inferred: ``raise ctx.invalid(...)``."""
        return Invalid(self.path + ((param,) if param else ()), message)


class Layer(BaseModel):
    """Base of every kind's params model."""

    # A docstring under a param documents it (`netspec blocks`, the JSON Schema), as Field(description=...) does:
    # read on demand by netspec.schema.document_fields, not with pydantic's use_attribute_docstrings, which parses
    # every kind's source at import (a third of `netspec check`'s time). defer_build: a kind's validator is
    # built the first time a spec uses it, so checking a spec does not pay for the kinds it does not use.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    kind: ClassVar[str] = ""
    role: ClassVar[Role] = "layer"
    extra_roles: ClassVar[tuple[Role, ...]] = ()  # further places the kind may fill, e.g. ("conv",)
    paper: ClassVar[str] = ""

    @classmethod
    def fills(cls, role: Role) -> bool:
        """Whether an entry field of ``role`` (e.g. a stage's ``attention`` or ``conv``) accepts this kind."""
        return cls.role == role or role in cls.extra_roles

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        """Static shape rule: output shape, parameters, MACs per sample. Report problems on ``ctx``."""
        raise NotImplementedError

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        """The ``torch.nn.Module`` for input shape ``x`` (only called on a valid spec)."""
        raise NotImplementedError

    def block_count(self) -> int:
        """Blocks this entry holds for the spec-wide stochastic-depth schedule (a stage: its depth; others: 0)."""
        return 0

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        """Hypothesis strategy of valid instances for input ``x`` (used by ``netspec.strategies``)."""
        raise NotImplementedError(f"kind {cls.kind!r} has no hypothesis strategy")

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        """Whether ``strategy`` can produce a valid layer for input ``x``."""
        return True

    @classmethod
    def describe(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def to_entry(self) -> str | dict[str, Any]:
        """The YAML form: ``kind`` alone when every param has its default, else ``{kind: {params}}``."""
        params: dict[str, Any] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if value == info.get_default(call_default_factory=True):
                continue
            params[name] = value.to_entry() if isinstance(value, Layer) else _plain(value)
        return {self.kind: params} if params else self.kind


class Attention(Layer):
    """Base of attention kinds: they map (N, C, H, W) to the same shape and can sit inside a stage block."""

    role: ClassVar[Role] = "attention"

    def count(self, channels: int, ctx: Context) -> int:
        """Learnable parameters for ``channels`` input channels."""
        raise NotImplementedError

    def macs_per_sample(self, x: Shape) -> int | None:
        """Multiply-accumulates per sample on input ``x`` (``None`` when H, W are unknown)."""
        raise NotImplementedError

    def check(self, x: Shape, ctx: Context) -> None:
        """Report params that do not fit ``x`` (e.g. a reduction above the channels) on ``ctx``."""

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if x.flat:
            raise ctx.invalid(None, f"{self.kind} needs a feature map (N, C, H, W), got {x}")
        self.check(x, ctx)
        return LayerInfo(x, self.count(x.channels, ctx), self.macs_per_sample(x))

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial  # as ``infer`` requires


def check_reduction(reduction: int, x: Shape, ctx: Context) -> None:
    """Report a channel `reduction` above the input's channels (C // r would be 0)."""
    if reduction > x.channels:
        ctx.error("reduction", f"must be <= {x.channels} (the input has {x.channels} channels)")


class BlockConv(Layer):
    """Base of kinds that can also stand in for a residual block's strided 3x3 conv (``stage: {conv: sk}``)."""

    extra_roles: ClassVar[tuple[Role, ...]] = ("conv",)

    def block_conv_info(self, x: Shape, ctx: Context, *, out: int, stride: int) -> LayerInfo:
        """Static shape rule as the block's conv: ``x`` -> ``out`` channels at ``stride``; problems on ``ctx``."""
        raise NotImplementedError

    def build_block_conv(self, x: Shape, ctx: Context, *, out: int, stride: int) -> "nn.Module":
        """The ``torch.nn.Module`` standing in for the block's conv (only called on a valid spec)."""
        raise NotImplementedError


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------
# Entries: a layer is written `kind`, `{kind: null}` or `{kind: {params}}`; fields of a kind that
# hold another layer (a stage's `attention`) are written the same way.


@dataclass(frozen=True)
class EntryRole:
    """Marks a params field that holds a nested layer entry of the given role."""

    role: Role


def _coerce_entry(role: Role) -> Any:
    def convert(value: Any) -> Any:
        if value is None or isinstance(value, Layer):
            if isinstance(value, Layer) and not value.fills(role):
                raise ValueError(f"{value.kind!r} is not {_role_name(role)}; choose from {', '.join(kinds_of(role))}")
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
    for name, info in cls.model_fields.items():
        for meta in info.metadata:
            if isinstance(meta, EntryRole):
                result[name] = meta.role
    return result


def parse_entry(raw: Any, path: Path, *, role: Role | None = None) -> tuple[Layer | None, list[Finding]]:
    """Validate one layer entry into its params model; report every problem found with its path."""
    if isinstance(raw, str):
        kind, params = raw, None
    elif isinstance(raw, dict) and len(raw) == 1:
        kind, params = next(iter(raw.items()))
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
    cls = KINDS.get(kind)
    if cls is None:
        choices = kinds_of(role) if role else sorted(KINDS)
        return None, [Finding(path + (kind,), f"unknown kind {kind!r}{suggest(kind, choices)}", on_key=True)]
    if role is not None and not cls.fills(role):
        message = f"{kind!r} is not {_role_name(role)}; choose from {', '.join(kinds_of(role))}"
        return None, [Finding(path + (kind,), message, on_key=True)]
    if params is None:
        params = {}
    if not isinstance(params, dict):
        message = f"params of {kind!r} must be a mapping {{name: value}}, got {type(params).__name__} {params!r}"
        return None, [Finding(path + (kind,), message)]
    findings: list[Finding] = []
    params = dict(params)
    for name, field_role in entry_fields(cls).items():
        if name in params and params[name] is not None and not isinstance(params[name], Layer):
            nested, nested_findings = parse_entry(params[name], path + (kind, name), role=field_role)
            findings += nested_findings
            if nested is None:
                del params[name]
            else:
                params[name] = nested
    try:
        layer = cls.model_validate(params)
    except ValidationError as error:
        return None, findings + findings_from_validation(error, path + (kind,), cls)
    return (layer if not findings else None), findings


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model at ``loc`` inside ``model``, for did-you-mean hints."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        candidates = [annotation, *typing.get_args(annotation)]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def findings_from_validation(error: ValidationError, prefix: Path, model: type[BaseModel]) -> list[Finding]:
    """Turn pydantic's errors into findings with full paths and short, helpful messages."""
    findings = []
    for item in error.errors(include_url=False):
        loc = tuple(part for part in item["loc"] if isinstance(part, (str, int)))
        kind = item["type"]
        if kind == "extra_forbidden":
            name = str(loc[-1])
            known = _fields_at(model, loc[:-1])
            hint = suggest(name, known) if known else ""
            listing = f"; known: {', '.join(known)}" if known else ""
            findings.append(Finding(prefix + loc, f"unknown field {name!r}{hint}{listing}", on_key=True))
        elif kind == "missing":
            findings.append(Finding(prefix + loc, f"missing required field {loc[-1]!r}" if loc else "missing"))
        else:
            message = item["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, "):]
            value = item.get("input")
            if not isinstance(value, (dict, Layer)):
                message += f" (got {_short(value)})"
            findings.append(Finding(prefix + loc, message[:1].lower() + message[1:]))
    return findings


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
