"""The contract of a layer kind: a pydantic params model that also carries its shape rule and builder.

A kind is one file: subclass :class:`Layer` (or :class:`Attention`), set ``kind`` and ``paper``,
implement ``infer`` (static shape, params, MACs), ``build`` (the ``torch.nn.Module``) and
``strategy`` (hypothesis examples), and decorate with :func:`netspec.register`.

This module holds the Layer hierarchy and the field types kinds share. Parsing a YAML entry into a layer is
:mod:`netspec.parsing` (with :data:`~netspec.parsing.AttentionEntry`/:data:`~netspec.parsing.ConvEntry`, the types
of fields holding a nested entry); pydantic's errors become messages in :mod:`netspec.messages`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

from netspec.errors import Finding, Invalid, Path
from netspec.messages import SpecModel, one_line, short
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
NAME_RULE = "a name is lower case letters, digits and _, not starting with a digit: [a-z_][a-z0-9_]*"
"""What :data:`EntryName`'s pattern asks for, in words (messages)."""
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

    def drop_rate(self, block: int, *, to_last: bool = False) -> float:
        """The stochastic-depth rate of this entry's ``block``-th block: EfficientNet's rate * index / total, or with
        ``to_last`` timm's ``linspace(0, rate, total)`` (ConvNeXt, RegNet), rate * index / (total - 1)."""
        index, total = self.first_block + block, self.total_blocks - 1 if to_last else self.total_blocks
        return self.drop_path * index / total if total > 0 else 0.0

    def at(self, *parts: str | int) -> "Context":
        return replace(self, path=self.path + parts)

    def error(self, param: str | None, message: str) -> None:
        """Record a semantic problem with ``param`` (or the layer itself) and carry on inferring."""
        self.findings.append(Finding(self.path + ((param,) if param else ()), message))

    def invalid(self, param: str | None, message: str) -> Invalid:
        """A problem after which no output shape can be inferred: ``raise ctx.invalid(...)``."""
        return Invalid(self.path + ((param,) if param else ()), message)


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
    _quoted_in_errors: ClassVar[bool] = False  # a layer given where it does not fit is named, not repr'd

    name: EntryName | None = Field(None, description="a name other entries can refer to (`from:`, `outputs:`)")
    inputs: EntryInputs | None = Field(
        None, alias="from", description="input: an earlier entry's name or `input` (default: the entry before); "
                                        "a list for kinds that take several inputs"
    )

    @classmethod
    def param_fields(cls) -> dict[str, Any]:
        """The kind's own params (its pydantic fields without the graph wiring ``name`` and ``from``)."""
        return {name: info for name, info in cls.model_fields.items() if name not in WIRING}

    @classmethod
    def further_params(cls) -> dict[str, type[BaseModel]]:
        """Params models whose fields an entry of this kind may also carry, by what brings them (a stage's blocks'
        own params, by block): the JSON Schema lists their fields beside the kind's own."""
        return {}

    def entry_params(self) -> list[str]:
        """The params this entry may carry: the kind's own (:meth:`param_fields`), and a stage's block's."""
        return list(type(self).param_fields())

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
            raise ctx.invalid(None, f"{_plugin_name(self)}: its shape rule failed: {one_line(error)}") from None
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
            raise ctx.invalid(None, f"{_plugin_name(self)}: its build failed: {one_line(error)}") from None
        if not isinstance(module, torch.nn.Module):
            raise ctx.invalid(None, f"{_plugin_name(self)}: its build returned {short(module)}, not a torch.nn.Module")
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
                                    f"{one_line(error)}") from None
        finally:
            module.train(training)
        got = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None
        if got != expected.dims():
            shown = "(N, " + ", ".join(map(str, got)) + ")" if got is not None else short(output)
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


def is_builtin(cls: type) -> bool:
    """Whether a kind ships with netspec (rather than coming from user code or a plugin)."""
    return cls.__module__ == "netspec" or cls.__module__.startswith("netspec.")


def _plugin_name(layer: Layer) -> str:
    return f"the plugin kind {layer.kind!r} ({type(layer).__module__})"


def _layer_info_problem(info: Any) -> str:
    """What is wrong with a shape rule's result (``""``: a well-formed :class:`LayerInfo`; plugins are checked)."""
    if not isinstance(info, LayerInfo):
        return f"{short(info)}, not a netspec LayerInfo(shape, params, macs)"
    shape = info.shape
    if not isinstance(shape, Shape):
        return f"a LayerInfo whose shape is {short(shape)}, not a netspec Shape"
    if not (type(shape.channels) is int and shape.channels >= 1):
        return f"a shape with {short(shape.channels)} channels (must be an int >= 1)"
    for size in (shape.height, shape.width):
        if not (size is None or (type(size) is int and size >= 1)):
            return f"a shape with a size of {short(size)} (must be an int >= 1 or None)"
    if not (type(info.params) is int and info.params >= 0):
        return f"{short(info.params)} parameters (must be an int >= 0)"
    if not (info.macs is None or (type(info.macs) is int and info.macs >= 0)):
        return f"{short(info.macs)} MACs (must be an int >= 0 or None)"
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
