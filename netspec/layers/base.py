"""The contract of a layer kind: a pydantic params model that also carries its shape rule and builder.

A kind is one file: subclass :class:`Layer` (or :class:`Attention`), set ``kind`` and ``paper``,
implement ``infer`` (static shape, params, MACs), ``build`` (the ``torch.nn.Module``) and
``strategy`` (hypothesis examples), and decorate with :func:`netspec.register`.
"""
from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError

from netspec.errors import Finding, Invalid, Path, Problem, SpecError, format_path
from netspec.registry import FAILED_PLUGINS, KINDS, is_builtin, suggest
from netspec.shapes import MAX_COUNT, LayerInfo, Shape, broadcast_size, conv_out_size

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

    from netspec.scaling import Scale

# Field types: strict, so that `out: true`, `out: "64"` or `out: 64.0` are errors, not silently converted.
PositiveInt = Annotated[int, Strict(), Field(ge=1, le=MAX_COUNT)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)]
Probability = Annotated[float, Strict(), Field(ge=0.0, le=1.0)]
Flag = Annotated[bool, Strict()]


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError("must be odd, so that padding (k-1)/2 on each side keeps the size")
    return value


OddInt = Annotated[int, Strict(), Field(ge=1, le=MAX_COUNT), AfterValidator(_odd)]  # a kernel size that keeps the size

Role = Literal["layer", "attention", "conv"]

EntryName = Annotated[str, Strict(), Field(pattern=r"^[a-z_][a-z0-9_]*$", max_length=64)]
"""A name other entries can refer to (``name:``); also the entry's child module name."""
MAX_INPUTS = 1024
"""Most entries one `from:` list names."""
EntryInputs = EntryName | Annotated[tuple[EntryName, ...], Field(max_length=MAX_INPUTS)]
"""``from:``: one earlier entry (or ``input``), or a list of them for a merge."""

WIRING = {"name": "name", "inputs": "from"}
"""Entry fields that wire the graph (python name -> YAML key): written beside the kind, not in its params."""


@dataclass(frozen=True)
class Context:
    """What a shape rule or builder needs besides its own params: inherited defaults and where it is."""

    norm: str = "batch"
    act: str = "relu"
    path: Path = ()
    findings: list[Finding] = field(default_factory=list)
    input_names: tuple[str, ...] = ()  # the entries a graph entry reads, for messages that name them
    block_input: int | None = None
    """channels entering the residual block an attention kind sits in (EfficientNet's SE widths); None outside one"""
    drop_path: float = 0.0
    """the spec's stochastic-depth rate (``Spec.drop_path``)"""
    first_block: int = 0
    """blocks of the network before this entry (stage blocks, counted by the stochastic-depth schedule)"""
    total_blocks: int = 0
    """blocks in the whole (scaled) network: the sum of every entry's ``block_count``"""
    input: Shape | None = None
    """the network's input shape (a detection head's strides are input size / level size); None outside a spec"""

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


class _RaisesSpecError(type(BaseModel)):  # type: ignore[misc]
    """Metaclass of :class:`SpecModel`: calling the class from Python turns pydantic's ``ValidationError`` into a
    :class:`~netspec.SpecError`. (Not a custom ``__init__``: pydantic would then call it while validating nested
    models too.)"""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as error:
            kind = getattr(cls, "kind", "")
            findings = findings_from_validation(error, (kind,) if kind else (), cls)
            raise SpecError(Problem(f.path, f.message) for f in findings) from None


class SpecModel(BaseModel, metaclass=_RaisesSpecError):
    """A pydantic model whose Python constructor raises :class:`~netspec.SpecError` (as YAML does), not pydantic's
    ``ValidationError``: ``Conv(out="64")`` -> ``conv.out: input should be a valid integer (got '64')``."""


class Layer(SpecModel):
    """Base of every kind's params model."""

    # A docstring under a param documents it (`netspec blocks`, the JSON Schema), as Field(description=...) does:
    # read on demand by netspec.schema.document_fields, not with pydantic's use_attribute_docstrings, which parses
    # every kind's source at import (a third of `netspec check`'s time). defer_build: a kind's validator is
    # built the first time a spec uses it, so checking a spec does not pay for the kinds it does not use.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, defer_build=True, validate_by_name=True, validate_by_alias=True
    )

    kind: ClassVar[str] = ""
    role: ClassVar[Role] = "layer"
    extra_roles: ClassVar[tuple[Role, ...]] = ()  # further places the kind may fill, e.g. ("conv",)
    paper: ClassVar[str] = ""
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    """How many inputs the kind takes (fewest, most; ``None``: any): merges take ``(2, None)``."""
    reads_sequences: ClassVar[bool] = False
    """Whether the kind takes a (C, A) sequence input (a detection head's output); none built in does."""

    name: EntryName | None = Field(None, description="a name other entries can refer to (`from:`, `outputs:`)")
    inputs: EntryInputs | None = Field(
        None, alias="from", description="input: an earlier entry's name or `input` (default: the entry before); "
                                        "a list for kinds that take several inputs"
    )

    @classmethod
    def param_fields(cls) -> dict[str, Any]:
        """The kind's own params (its pydantic fields without the graph wiring ``name`` and ``from``)."""
        return {name: info for name, info in cls.model_fields.items() if name not in WIRING}

    @property
    def wired(self) -> bool:
        """Whether the entry carries ``name:`` or ``from:`` (which makes its spec a graph)."""
        return self.name is not None or self.inputs is not None

    def references(self) -> dict[str, str]:
        """Entries named inside the params (param -> name), read as further inputs: ``upsample: {to: c3}``."""
        return {}

    def infer_inputs(self, inputs: list[Shape], ctx: Context) -> LayerInfo:
        """Shape rule on every input (``from:`` ones, then :meth:`references`); one-input kinds use :meth:`infer`."""
        return self.infer(inputs[0], ctx)

    def build_inputs(self, inputs: list[Shape], ctx: Context) -> "nn.Module":
        """The module, whose ``forward`` takes the inputs in the same order; one-input kinds use :meth:`build`."""
        return self.build(inputs[0], ctx)

    @classmethod
    def companions(cls, x: Shape) -> "SearchStrategy[list[Shape]]":
        """Hypothesis strategy of the inputs after the first (``x``) that a layer of ``strategy(x)`` accepts."""
        from hypothesis import strategies as st

        return st.just([])

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

    def build_units(self) -> int:
        """About how many torch modules ``build`` creates: what building costs, bounded by the compiler's budget
        (``max_modules``) before anything is built. Kinds that repeat blocks or branches override it."""
        return 1

    def checked_infer(self, x: "Shape | list[Shape]", ctx: Context) -> LayerInfo:
        """``infer`` (``infer_inputs`` for a list of inputs), as the compiler calls it: a plugin kind's own bug or a
        result that is not a :class:`LayerInfo` becomes a located problem naming the plugin, never a traceback."""
        inputs = [x] if isinstance(x, Shape) else list(x)
        sequence = next((shape for shape in inputs if shape.sequence), None)
        if sequence is not None and not self.reads_sequences:
            raise ctx.invalid(None, f"{self.kind} cannot read {sequence}, a head's per-anchor outputs: a detection "
                                    "head ends the network (list it in `outputs:`)")
        if is_builtin(type(self)):
            return self.infer_inputs(inputs, ctx)
        try:
            info = self.infer_inputs(inputs, ctx)
        except Invalid:
            raise
        except Exception as error:
            raise ctx.invalid(None, f"{_plugin_name(self)}: its shape rule failed: {_one_line(error)}") from None
        wrong = _layer_info_problem(info)
        if wrong:
            raise ctx.invalid(None, f"{_plugin_name(self)}: its shape rule returned {wrong}")
        return info

    def checked_build(self, x: "Shape | list[Shape]", ctx: Context) -> "nn.Module":
        """``build`` (``build_inputs`` for a list), as the compiler calls it: a plugin kind's module is run once on
        zeros of its input shapes (when known) and must output what its own shape rule says; otherwise a located
        problem naming it."""
        inputs = [x] if isinstance(x, Shape) else list(x)
        if is_builtin(type(self)):
            return self.build_inputs(inputs, ctx)
        import torch

        try:
            module = self.build_inputs(inputs, ctx)
        except Exception as error:
            raise ctx.invalid(None, f"{_plugin_name(self)}: its build failed: {_one_line(error)}") from None
        if not isinstance(module, torch.nn.Module):
            raise ctx.invalid(None, f"{_plugin_name(self)}: its build returned {_short(module)}, not a torch.nn.Module")
        if not all(shape.sized for shape in inputs):
            return module
        expected = self.checked_infer(inputs, replace(ctx, findings=[])).shape
        shown_input = ", ".join(str(shape) for shape in inputs)
        training = module.training
        try:
            with torch.no_grad():
                output = module.eval()(*(torch.zeros(1, *shape.dims()) for shape in inputs))  # type: ignore[arg-type]
        except Exception as error:
            raise ctx.invalid(None, f"{_plugin_name(self)}: its module failed on an input {shown_input}: "
                                    f"{_one_line(error)}") from None
        finally:
            module.train(training)
        got = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None
        if got != expected.dims():
            shown = "(N, " + ", ".join(map(str, got)) + ")" if got is not None else _short(output)
            raise ctx.invalid(None, f"{_plugin_name(self)}: its module outputs {shown} on an input {shown_input}, "
                                    f"but its shape rule says {expected}")
        return module

    def rescaled(self, scale: "Scale") -> "Layer":
        """This layer under ``scale`` after its channel/depth params were scaled: a kind's own scale rule (C3k2 at
        Ultralytics' m/l/x scales); by default the layer unchanged."""
        return self

    @classmethod
    def scale_note(cls, scale: "Scale") -> str | None:
        """A line for the summary when :meth:`rescaled` changes this kind under ``scale`` (else ``None``)."""
        return None

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
        """The YAML form: ``kind`` alone when every param has its default, else ``{kind: {params}}``;
        ``name`` and ``from`` beside the kind when set."""
        params: dict[str, Any] = {}
        for name, info in type(self).param_fields().items():
            value = getattr(self, name)
            if value == info.get_default(call_default_factory=True):
                continue
            params[name] = value.to_entry() if isinstance(value, Layer) else _plain(value)
        wiring = {key: _plain(getattr(self, name)) for name, key in WIRING.items() if getattr(self, name) is not None}
        if wiring:
            return {self.kind: params, **wiring}
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


class Merge(Layer):
    """Base of kinds that combine several inputs, written ``from: [a, b, ...]`` (order kept): concat, add, mul."""

    arity: ClassVar[tuple[int, int | None]] = (2, None)

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        raise ctx.invalid(None, f"{self.kind} combines several inputs: write `from: [a, b]` beside it")

    def merge(self, inputs: list[Shape], ctx: Context) -> LayerInfo:
        """Static shape rule on the inputs; problems name them (:func:`describe_inputs`)."""
        raise NotImplementedError

    def infer_inputs(self, inputs: list[Shape], ctx: Context) -> LayerInfo:
        if any(x.flat for x in inputs) and not all(x.flat for x in inputs):
            raise ctx.invalid(None, f"{self.kind} of flat and spatial tensors: {describe_inputs(inputs, ctx)}")
        return self.merge(inputs, ctx)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return True

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        """A merge has no params of its own to draw (its inputs come from ``companions``)."""
        from hypothesis import strategies as st

        return st.just(cls())


def broadcast_inputs(inputs: list[Shape], ctx: Context, kind: str) -> Shape:
    """The shape of an elementwise ``add``/``mul``: equal shapes, or an (N, C, 1, 1) (any size-1 dim) broadcast."""
    result = inputs[0]
    for x in inputs[1:]:
        dims = [broadcast_size(a, b) for a, b in zip(result.dims(), x.dims())]
        if not all(fits for fits, _ in dims):
            raise ctx.invalid(None, f"{kind} needs equal shapes (or a size-1 gate such as (N, C, 1, 1)): "
                                    f"{describe_inputs(inputs, ctx)}")
        sizes = [size for _, size in dims]
        result = Shape(sizes[0], flat=True) if x.flat else Shape(sizes[0], sizes[1], sizes[2])  # type: ignore[arg-type]
    return result


def describe_inputs(inputs: list[Shape], ctx: Context) -> str:
    """``c4 (N, 64, 20, 20) and up1 (N, 32, 40, 40)``: each input's name (when known) and shape."""
    names = list(ctx.input_names) + [f"input {i + 1}" for i in range(len(ctx.input_names), len(inputs))]
    parts = [f"{name} {shape}" for name, shape in zip(names, inputs)]
    return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else "".join(parts)


def _plugin_name(layer: Layer) -> str:
    return f"the plugin kind {layer.kind!r} ({type(layer).__module__})"


def _one_line(error: BaseException) -> str:
    reason = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {reason}" if reason else type(error).__name__


def _layer_info_problem(info: Any) -> str:
    """What is wrong with a shape rule's result (``""``: a well-formed :class:`LayerInfo`; plugins are checked)."""
    if not isinstance(info, LayerInfo):
        return f"{_short(info)}, not a netspec LayerInfo(shape, params, macs)"
    shape = info.shape
    if not isinstance(shape, Shape):
        return f"a LayerInfo whose shape is {_short(shape)}, not a netspec Shape"
    if not (type(shape.channels) is int and shape.channels >= 1):
        return f"a shape with {_short(shape.channels)} channels (must be an int >= 1)"
    for size in (shape.height, shape.width):
        if not (size is None or (type(size) is int and size >= 1)):
            return f"a shape with a size of {_short(size)} (must be an int >= 1 or None)"
    if not (type(info.params) is int and info.params >= 0):
        return f"{_short(info.params)} parameters (must be an int >= 0)"
    if not (info.macs is None or (type(info.macs) is int and info.macs >= 0)):
        return f"{_short(info.macs)} MACs (must be an int >= 0 or None)"
    return ""


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


class AttentionConv(Attention, BlockConv):
    """Base of attention kinds that also stand in for a block's 3x3 conv (`sk`, `splat`): C_in -> C_out at a stride.

    A subclass gives the rules for `in_channels` -> `out_channels` (``check_channels``, ``params_for``,
    ``macs_for``) and ``build_block_conv``; standalone, the kind is the C -> C, stride-1 case of them.
    """

    def check_channels(self, in_channels: int, out_channels: int, ctx: Context) -> None:
        """Report params that do not fit ``in_channels`` -> ``out_channels`` on ``ctx``."""

    def params_for(self, in_channels: int, out_channels: int) -> int:
        raise NotImplementedError

    def macs_for(self, in_channels: int, y: Shape) -> int | None:
        """MACs per sample with ``in_channels`` in and output shape ``y``."""
        raise NotImplementedError

    def check(self, x: Shape, ctx: Context) -> None:
        self.check_channels(x.channels, x.channels, ctx)

    def count(self, channels: int, ctx: Context) -> int:
        return self.params_for(channels, channels)

    def macs_per_sample(self, x: Shape) -> int | None:
        return self.macs_for(x.channels, x)

    def block_conv_info(self, x: Shape, ctx: Context, *, out: int, stride: int) -> LayerInfo:
        if x.flat:
            raise ctx.invalid(None, f"{self.kind} needs a feature map (N, C, H, W), got {x}")
        self.check_channels(x.channels, out, ctx)
        height, width = (conv_out_size(size, kernel=3, stride=stride, padding=1) for size in (x.height, x.width))
        y = Shape(out, height, width)
        return LayerInfo(y, self.params_for(x.channels, out), self.macs_for(x.channels, y))

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        return self.build_block_conv(x, ctx, out=x.channels, stride=1)


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
    if kind.startswith("timm:"):  # timm's attention names: a netspec kind with timm's defaults (netspec.timm_attention)
        from netspec.timm_attention import resolve

        resolved = resolve(kind, params)
        if isinstance(resolved, str):
            return None, [Finding(path + (kind,), resolved, on_key=True)]
        kind, params = resolved
    cls = KINDS.get(kind)
    if cls is None:
        choices = kinds_of(role) if role else sorted(KINDS)
        hint = suggest(kind, choices) if kind in FAILED_PLUGINS else _did_you_mean(kind, choices)
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


NAME_RULE = "a name is lower case letters, digits and _, not starting with a digit: [a-z_][a-z0-9_]*"


def _wiring_findings(error: ValidationError, wiring: dict[str, Any], path: Path) -> list[Finding]:
    """One finding per bad `name`/`from` (or per bad name in a `from` list), not pydantic's one per union branch."""
    findings: dict[Path, Finding] = {}
    for item in error.errors(include_url=False):
        field_name = WIRING.get(str(item["loc"][0]), str(item["loc"][0]))
        indices = tuple(part for part in item["loc"][1:] if isinstance(part, int))
        if "pattern" in item["type"]:
            where = path + (field_name, *indices)
            findings[where] = Finding(where, f"{NAME_RULE} (got {_short(item.get('input'))})")
        elif field_name == "from":
            where = path + ("from",)
            findings.setdefault(where, Finding(where, "`from` is an earlier entry's name (or `input`), or a list of "
                                                      f"names for a merge (got {_short(wiring['from'])})"))
        else:
            where = path + (field_name,)
            findings.setdefault(where, Finding(where, f"{item['msg'][:1].lower()}{item['msg'][1:]} "
                                                      f"(got {_short(item.get('input'))})"))
    pattern_paths = {where[:len(path) + 1] for where, finding in findings.items() if NAME_RULE in finding.message}
    return [finding for where, finding in findings.items() if where not in pattern_paths or NAME_RULE in finding.message]


class _Wiring(BaseModel):
    """Validates ``name``/``from`` alone, so their problems are located beside the kind, not in its params."""

    model_config = ConfigDict(extra="forbid")

    name: EntryName | None = None
    inputs: EntryInputs | None = None


_WIRING_CHECK = _Wiring


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model at ``loc`` inside ``model``, for did-you-mean hints."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = _params_of(current)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        candidates = [annotation, *typing.get_args(annotation)]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return list(_params_of(current))


def _params_of(model: Any) -> dict[str, Any]:
    if isinstance(model, type) and issubclass(model, Layer):
        return model.param_fields()
    return dict(getattr(model, "model_fields", {}) or {})


def findings_from_validation(error: ValidationError, prefix: Path, model: type[BaseModel]) -> list[Finding]:
    """Turn pydantic's errors into findings with full paths and short, helpful messages."""
    findings = []
    for item in error.errors(include_url=False):
        loc = tuple(part for part in item["loc"] if isinstance(part, (str, int)))
        kind = item["type"]
        if kind == "invalid_key" and loc:  # pydantic writes the key as text ('1.5'): point at the key as written
            key = item.get("input")
            findings.append(Finding(prefix + loc[:-1] + (key,), f"a field name must be text, got {_short(key)}",
                                    on_key=True))
        elif kind == "extra_forbidden":
            name = str(loc[-1])
            known = _fields_at(model, loc[:-1])
            hint = _did_you_mean(name, known) if known else ""
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
            if kind == "literal_error" and isinstance(value, str):
                message += _did_you_mean(value, re.findall(r"'([^']*)'", str(item.get("ctx", {}).get("expected", ""))))
            findings.append(Finding(prefix + loc, message[:1].lower() + message[1:]))
    return findings


ALIASES = {
    # what people coming from PyTorch, timm or Ultralytics write -> netspec's name
    "out_channels": "out", "channels": "out", "c2": "out", "filters": "out", "planes": "out", "features": "out",
    "out_features": "out", "kernel_size": "kernel", "k": "kernel", "s": "stride", "pad": "padding",
    "num_blocks": "depth", "blocks": "depth", "n": "depth", "repeats": "depth", "ratio": "reduction",
    "reduction_ratio": "reduction", "r": "reduction", "activation": "act", "act_layer": "act", "norm_layer": "norm",
    "drop": "p", "drop_rate": "p", "dropout": "p", "rate": "p",
    "bn": "batch", "batchnorm": "batch", "batch_norm": "batch", "batchnorm2d": "batch", "in": "instance",
    "instancenorm": "instance", "instance_norm": "instance",
    "squeeze_excite": "se", "squeeze_excitation": "se", "senet": "se", "ecanet": "eca", "selective_kernel": "sk",
    "sknet": "sk", "non_local": "nonlocal", "nonlocal2d": "nonlocal", "nl": "nonlocal", "position": "pam",
    "channel": "cam", "dual": "danet", "conv2d": "conv", "linear_layer": "linear", "fc": "linear", "dense": "linear",
    "max_pool": "maxpool", "avg_pool": "avgpool", "global_pool": "avgpool", "gap": "avgpool",
}
"""Common names for netspec's fields, values and kinds, for "did you mean" (used only when it names a choice)."""


def _normal(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _did_you_mean(value: str, choices: list[str]) -> str:
    """`` (did you mean 'relu'?)`` for a near miss: case (``ReLU``), separators (``leakyrelu``), a common name from
    PyTorch/timm (``out_channels``, ``bn``), or a close spelling; else ``""``."""
    if value in choices:
        return ""
    alias = ALIASES.get(value.lower()) or ALIASES.get(_normal(value))
    matches = [choice for choice in choices if choice.lower() == value.lower()]
    matches += [choice for choice in choices if _normal(choice) == _normal(value)]
    matches += [alias] if alias in choices else []
    if matches:
        return f" (did you mean {matches[0]!r}?)"
    return suggest(value, choices)


def _short(value: Any) -> str:
    if type(value) is int and value.bit_length() > 128:  # repr() fails past 4,300 digits, and says nothing useful
        return f"an integer of {value.bit_length() * 0.30103:,.0f} digits"
    try:
        text = repr(value)
    except ValueError:
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 40 else text[:37] + "..."
