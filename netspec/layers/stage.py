"""``stage``: `depth` blocks of one registered block (netspec.blocks), with optional attention in each block."""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, ModelWrapValidatorHandler, PrivateAttr, SerializationInfo, \
    SerializerFunctionWrapHandler, Strict, ValidationError, model_serializer, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from netspec.blocks import BLOCKS, BlockParams, Site, block_names
from netspec.blocks.base import COMMON, own_params, plugin_block_call, users_of
from netspec.layers.base import Context, Flag, Layer, OddInt, PositiveInt, _plain
from netspec.ops import ActName, NormName
from netspec.parsing import AttentionEntry, ConvEntry
from netspec.registry import register
from netspec.scaling import Channels, Depth, scaled_fields
from netspec.shapes import LayerInfo, Shape, add_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

    from netspec.scaling import Scale

Ratio = Annotated[float, Strict(), Field(gt=0, le=64, allow_inf_nan=False)]
MAX_BLOCKS = 1024
"""Most blocks in one stage (after scaling); ResNet-1202 has 200."""
_UNSET: Any = object()


def _known_block(name: str) -> str:
    """A registered block's name; else the error lists the registered ones (and the nearest, if close)."""
    if name in BLOCKS:  # a built-in or already registered block: no plugin is loaded to check it
        return name
    names = block_names()  # loads the installed plugins, one of which may register it
    if name not in names:  # as pydantic's error for a Literal: netspec's messages add the did-you-mean
        listing = ", ".join(repr(n) for n in names[:-1]) + f" or {names[-1]!r}" if len(names) > 1 else repr(names[0])
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": listing})
    return name


def _block_enum(schema: dict) -> None:  # type: ignore[type-arg]
    """The JSON Schema's `block` lists the registered blocks (the built-in ones for ``netspec schema --builtin``)."""
    schema["enum"] = block_names()


BlockName = Annotated[str, Strict(), AfterValidator(_known_block)]
"""A registered block (``netspec.blocks``): plain, basic, bottleneck, inverted, or a plugin's."""


def _line_errors(error: ValidationError) -> list[InitErrorDetails]:
    """``error``'s errors, message and type kept, to raise again together with others (one ValidationError)."""
    return [InitErrorDetails(type=PydanticCustomError(item["type"], item["msg"], item.get("ctx")),  # type: ignore[arg-type]
                             loc=item["loc"], input=item["input"]) for item in error.errors(include_url=False)]


@functools.cache
def _field_keys(model: type[BaseModel]) -> frozenset[str]:
    """``model``'s field names and aliases."""
    return frozenset(model.model_fields) | {info.alias for info in model.model_fields.values() if info.alias}


def _needs(users: list[str]) -> str:
    """``plain, basic or bottleneck``: the blocks that read a param."""
    return (", ".join(users[:-1]) + " or " if len(users) > 1 else "") + users[-1] if users else "another block"


def _at_their_default(key: str, value: Any, users: list[str]) -> bool:
    """Whether ``value`` is the default of block param ``key`` for every block in ``users`` that declares it as its
    own (such a value says nothing: a stage of another block may carry it unreported)."""
    defaults = [own_params(BLOCKS[user])[key].get_default(call_default_factory=True) for user in users
                if key in own_params(BLOCKS[user])]
    return bool(defaults) and all(value == default for default in defaults)


def _repeat_last_block(total: LayerInfo, block_start: LayerInfo, times: int) -> LayerInfo:
    """``total`` plus ``times`` more copies of its last block (which began at ``block_start``): O(1) in the depth."""
    params = total.params - block_start.params
    macs = None if total.macs is None or block_start.macs is None else total.macs - block_start.macs
    return LayerInfo(total.shape, total.params + times * params, add_macs(total.macs, None if macs is None else times * macs))


@register
class Stage(Layer):
    """A stage: `depth` blocks of one registered `block`; the first has `stride` (and the block's shortcut rule).

    The block (netspec.blocks, one file each; plugins add more) gives one block's shape rule and module; the
    stage passes it its params, repeats it and counts the repeats. Built-in blocks: `plain` and `basic` are two
    3x3 convs (plain without shortcut), `bottleneck` is 1x1 -> 3x3 (stride, groups) -> 1x1 with `width` mid
    channels (default out/4; ResNeXt sets `width` and `groups`); a 1x1 conv+norm shortcut when the shape changes.
    Their `attention` runs on the block's output before the residual addition, as in SENet and CBAM; `conv`
    names a kind that replaces the block's strided 3x3 conv (bottleneck: the middle one), e.g. `sk` for SKNet.
    `dilation` D keeps the map size instead of striding, as torchvision's `replace_stride_with_dilation`
    (DeepLab, DANet): the 3x3 conv of the first block runs at dilation max(D // 2, 1), the others at D.
    ResNeSt's options: `avd` strides a strided block with a 3x3 average pool (padding 1) after its 3x3 conv,
    which then runs at stride 1; `avg_down` makes a strided projection shortcut an average pool (stride x stride,
    ceil mode, padding excluded) before a stride-1 1x1 conv + norm (ResNet-D). `attention_at: conv` runs the
    attention after the block's (last) 3x3 conv, before its norm, as the official SimAM ResNets place SimAM;
    `attention_at: mid` runs it after that conv's norm and act (timm's byobnet bottlenecks: SE on the mid width).
    `inverted` is MobileNetV2/V3's inverted residual and EfficientNet's MBConv: 1x1 expansion to `width` (or
    `expand` x the input), depthwise `kernel` conv with the stride, `attention`, linear 1x1 projection; the input
    is added only at stride 1 with unchanged channels. A param the block does not use is an error.
    A block's own params (its `Params`: regnet's `group_width`, convnext's `ls_init` and `grn`, a plugin block's)
    are written here flat like the others, validated by the block's model, and read as attributes (`stage.grn`).
    """

    kind = "stage"
    paper = "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 (arXiv:1512.03385)"

    out: Channels
    block: BlockName = Field("bottleneck", json_schema_extra=_block_enum)
    depth: Depth = 1
    stride: PositiveInt = 1
    dilation: PositiveInt = 1
    width: Channels | None = None
    groups: PositiveInt = 1
    attention: AttentionEntry = None
    conv: ConvEntry = None
    norm: NormName | None = None
    act: ActName | None = None
    avd: Flag = False
    """stride with a 3x3 average pool after the block's 3x3 conv, run at stride 1 (ResNeSt's avd)"""
    avg_down: Flag = False
    """projection shortcut: average pool, then a stride-1 1x1 conv + norm (ResNeSt, ResNet-D)"""
    attention_at: Literal["output", "conv", "mid"] = "output"
    """where `attention` runs: on the block's output before the addition, after the block's (last) 3x3 conv
    before its norm (`conv`: the official SimAM ResNets), or after that conv's norm and act, on the mid width
    (`mid`: timm's byobnet bottleneck, e.g. sebotnet33ts)"""
    expand: Ratio | None = None
    """inverted, fused: expanded channels = round(ratio x the block's input) (inverted: default 6, fused: 4; or give
    `width`); convnext: the MLP's hidden width = int(ratio x C) (default 4)"""
    kernel: OddInt | None = None
    """inverted: the depthwise conv's kernel (default 3); fused: the expansion conv's (default 3); convnext: its
    depthwise conv's (default 7)"""
    padding: Literal["same"] | None = None
    """inverted, fused: `same` pads the k x k convs as TensorFlow's SAME (ceil(size / stride) out, the odd pixel
    right/bottom: timm's tf_ EfficientNets); default (k - 1) // 2 on each side"""
    _block_params: BlockParams | None = PrivateAttr(None)
    """the block's own params (``Block.Params``), validated from the keys of the stage that it declares"""
    _stray_params: dict[str, Any] = PrivateAttr(default_factory=dict)
    """other blocks' own params kept from Python edits (``block`` changed by a copy or an assignment, another
    block's param set): written in the dump and reported by ``check``, as in YAML they are a located error"""

    @model_validator(mode="wrap")
    @classmethod
    def _split_block_params(cls, data: Any, handler: ModelWrapValidatorHandler["Stage"]) -> "Stage":
        """Validate the keys the chosen block's ``Params`` declares with that model, the rest as the stage's fields;
        a key neither declares is an unknown field (known: the stage's params and the block's), or, when another
        block declares it, a param this block does not use. Every problem is reported at once, at its key."""
        if not isinstance(data, dict):
            return handler(data)
        name = data.get("block", cls.model_fields["block"].default)
        names = cls._stage_keys()
        others = [key for key in data if isinstance(key, str) and key not in names]
        if isinstance(name, str) and name not in BLOCKS:
            block_names()  # loads the installed plugins, one of which may register it (with params of its own)
        block = BLOCKS.get(name) if isinstance(name, str) else None
        params_model = block.Params if block is not None else None
        if not others and params_model is None:
            return handler(data)
        declared = own_params(block) if block is not None else {}
        errors: list[InitErrorDetails] = []
        for key in others:
            if key in declared:
                continue
            users = users_of(key)
            if users and block is None:  # the stage's `block` is wrong: its error is the one to fix
                continue
            if users and _at_their_default(key, data[key], users):
                continue  # another block's param at its default: nothing to report (as `check` and a copy treat it)
            if users:
                message = f"only for block: {_needs(users)} (block: {name} does not use it)"
                errors.append(InitErrorDetails(type=PydanticCustomError("block_param", message), loc=(key,),
                                               input=data[key]))
            else:
                known = [*cls.param_fields(), *declared]
                errors.append(InitErrorDetails(type=PydanticCustomError(
                    "extra_forbidden", "Extra inputs are not permitted", {"known": known}), loc=(key,), input=data[key]))
        stage, params, failures = None, None, []
        try:
            stage = handler({key: value for key, value in data.items() if key not in others})
        except ValidationError as error:
            failures.append(error)
        if params_model is not None:
            try:
                params = params_model.model_validate({key: data[key] for key in others if key in declared})
            except ValidationError as error:
                failures.append(error)
        if len(failures) == 1 and not errors:
            raise failures[0]
        if failures or errors:
            raise ValidationError.from_exception_data(cls.__name__, [*sum(map(_line_errors, failures), []), *errors])
        assert stage is not None
        stage._block_params = params
        return stage

    @classmethod
    def _stage_keys(cls) -> frozenset[str]:
        """The stage's own field names and aliases (``from``)."""
        return _field_keys(cls)

    def _rebind(self, updates: Mapping[str, Any]) -> None:
        """Sort the block's own params again after ``block`` or one of them changed (``updates``): those the block
        declares are validated by its ``Params``; another block's is kept as a stray that ``check`` reports (dropped
        when it is at that block's default, as ``check`` would not report it); a param no block has is an error."""
        own = self._block_params
        data = {**({key: getattr(own, key) for key in own.model_fields_set} if own is not None else {}),
                **self._stray_params, **updates}
        block = BLOCKS[self.block]
        declared = own_params(block)
        strays: dict[str, Any] = {}
        for key, value in data.items():
            if key in declared:
                continue
            users = users_of(key)
            if not users:
                known = ", ".join([*type(self).param_fields(), *declared])
                raise ValueError(f"stage has no param {key!r} (block: {self.block}; known: {known})")
            if not _at_their_default(key, value, users):
                strays[key] = value
        params = block.Params.model_validate({key: value for key, value in data.items() if key in declared}) \
            if block.Params is not None else None
        self._block_params, self._stray_params = params, strays

    def _assign_block(self, block: Any, updates: Mapping[str, Any]) -> None:
        """``block`` validated as a field assignment, then the block's own params sorted again (with ``updates``);
        on an error the stage is left as it was."""
        before, was_set = self.__dict__["block"], "block" in self.model_fields_set
        super().__setattr__("block", block)
        try:
            self._rebind(updates)
        except ValueError:
            self.__dict__["block"] = before
            if not was_set:
                self.model_fields_set.discard("block")
            raise

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> "Stage":
        """pydantic's copy; an ``update`` of ``block`` or of a block's own param is applied as assigning it is: the
        block validated, its own params validated by its ``Params``, another block's kept for ``check`` to report."""
        fields = dict(update or {})
        own = {key: fields.pop(key) for key in [key for key in fields if key not in self._stage_keys()]}
        block = fields.pop("block", _UNSET)
        copy = super().model_copy(update=fields or None, deep=deep)
        if block is not _UNSET:
            copy._assign_block(block, own)
        elif own:
            copy._rebind(own)
        return copy

    def rescaled(self, scale: "Scale") -> "Layer":
        """Under ``scale``: the block's own :data:`Channels`/:data:`Depth` params scaled as the stage's are."""
        own = self._block_params
        updates: dict[str, int] = {}
        for name, by in (scaled_fields(type(own)).items() if own is not None else ()):
            value = getattr(own, name)
            if isinstance(value, int) and not isinstance(value, bool):
                updates[name] = scale.channels(value) if by == "channels" else scale.repeats(value)
        if not updates:
            return self
        stage = self.model_copy()
        stage._block_params = own.model_copy(update=updates)  # type: ignore[union-attr]
        return stage

    @property
    def block_params(self) -> BlockParams | None:
        """The block's own params (its ``Params`` model; ``None`` when it has none), also read as attributes."""
        return self._block_params

    if not TYPE_CHECKING:
        def __getattr__(self, name: str) -> Any:
            """A block's own param reads as the stage's (``stage.group_width``), as the shared ones do."""
            try:
                return super().__getattr__(name)
            except AttributeError:
                try:
                    params = object.__getattribute__(self, "__pydantic_private__") or {}
                except AttributeError:
                    raise AttributeError(name) from None
                own = params.get("_block_params")
                if own is not None and name in type(own).model_fields:
                    return getattr(own, name)
                model = getattr(BLOCKS.get(self.__dict__.get("block")), "Params", None)
                if own is None and model is not None and name in model.model_fields:  # model_construct: no validator
                    return model.model_fields[name].get_default(call_default_factory=True)
                strays = params.get("_stray_params") or {}
                if name in strays:
                    return strays[name]
                raise

    def __setattr__(self, name: str, value: Any) -> None:
        """A block's own param is assigned (and validated) in its model, as a stage field is in the stage; another
        block's is kept for ``check`` to report; a new ``block`` sorts the block's own params again."""
        if name == "block":
            self._assign_block(value, {})
        elif not name.startswith("_") and name not in self._stage_keys() and users_of(name):
            self._rebind({name: value})
        else:
            super().__setattr__(name, value)

    @model_serializer(mode="wrap")
    def _dump_block_params(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """``model_dump`` writes the block's own params beside the stage's, so that it validates back."""
        data = handler(self)
        own = self._block_params
        if not isinstance(data, dict) or (own is None and not self._stray_params):
            return data
        extra = own.model_dump(mode=info.mode, exclude_defaults=info.exclude_defaults, exclude_none=info.exclude_none,
                               exclude_unset=info.exclude_unset) if own is not None else {}
        include, exclude = info.include, info.exclude
        for key, value in {**extra, **self._stray_params}.items():
            if include is not None and key not in include:
                continue
            if exclude is not None and key in exclude and \
                    (not isinstance(exclude, dict) or exclude[key] in (True, ...)):
                continue
            data[key] = value
        return data

    def __repr_args__(self) -> Any:
        yield from super().__repr_args__()
        own = self._block_params
        if own is not None:
            yield from ((name, getattr(own, name)) for name in type(own).model_fields if name in own.model_fields_set)
        yield from self._stray_params.items()

    def entry_params(self) -> list[str]:
        """The stage's params and every registered block's own (an override may switch ``block`` with them; a param
        the resulting block does not use is then reported at its key)."""
        mine = own_params(BLOCKS[self.block])
        others = [name for block in BLOCKS.values() for name in own_params(block) if name not in mine]
        return [*super().entry_params(), *mine, *dict.fromkeys(others)]

    def to_entry(self) -> str | dict[str, Any]:
        """As every kind's, with the block's own params (those away from their defaults) beside the stage's."""
        entry = super().to_entry()
        own = self._block_params
        extra = {name: _plain(getattr(own, name)) for name, info in type(own).model_fields.items()
                 if getattr(own, name) != info.get_default(call_default_factory=True)} if own is not None else {}
        extra.update({name: _plain(value) for name, value in self._stray_params.items()})
        if not extra:
            return entry
        if isinstance(entry, str):
            return {self.kind: extra}
        entry[self.kind] = {**entry[self.kind], **extra}
        return entry

    @classmethod
    def further_params(cls) -> dict[str, type[BaseModel]]:
        """The registered blocks' own ``Params`` by block (only the built-in ones under ``netspec schema --builtin``)."""
        models = {name: BLOCKS[name].Params for name in block_names()}
        return {name: model for name, model in models.items() if model is not None}

    def block_count(self) -> int:
        return self.depth

    def build_units(self) -> int:
        """Per block: what the block says it builds (its convs, shortcut, attention or conv kind)."""
        return 1 + self.depth * BLOCKS[self.block].units(self)

    def sites(self, ctx: Context) -> list[Site]:
        """Each block's place: its index, stride (the first block's is the stage's) and the resolved norm/act."""
        norm, act = self.norm or ctx.norm, self.act or ctx.act
        return [Site(index, self.stride if index == 0 else 1, norm, act) for index in range(self.depth)]

    def check_options(self, ctx: Context) -> None:
        """A param set away from its default that the block does not read is an error naming the blocks that do, as
        is another block's own param that a Python edit left on the stage."""
        block = BLOCKS[self.block]
        fields = type(self).model_fields
        unread = self.model_fields_set - COMMON - block.options - block.explained
        for name in [name for name in fields if name in unread]:
            if getattr(self, name) != fields[name].get_default(call_default_factory=True):
                ctx.error(name, f"only for block: {_needs(users_of(name))} (block: {self.block} does not use it)")
        for name in self._stray_params:
            ctx.error(name, f"only for block: {_needs(users_of(name))} (block: {self.block} does not use it)")

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if self.depth > MAX_BLOCKS:
            raise ctx.invalid("depth", f"at most {MAX_BLOCKS} blocks per stage, got {self.depth}")
        block = BLOCKS[self.block]
        findings_before = len(ctx.findings)
        self.check_options(ctx)
        plugin_block_call(block, "check", ctx, lambda: block.check(self, ctx))
        total = block_start = LayerInfo(x, 0, 0)
        for site in self.sites(ctx)[:2]:  # blocks after the second repeat it exactly: counted below
            block_start = total
            info = plugin_block_call(block, "shape rule", ctx, lambda: block.infer(self, total.shape, ctx, site))
            total = total.then(info)
            if len(ctx.findings) > findings_before:
                return total  # the same mistake would repeat in every block
        return _repeat_last_block(total, block_start, self.depth - 2) if self.depth > 2 else total

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from dataclasses import replace

        from torch import nn

        block = BLOCKS[self.block]
        blocks = nn.Sequential()
        shape = x
        for site in self.sites(ctx):
            module = plugin_block_call(block, "build", ctx, lambda: block.build(self, shape, ctx, site))
            if not isinstance(module, nn.Module):
                raise ctx.invalid(None, f"the plugin block {self.block!r}: its build returned {type(module).__name__}, "
                                        "not a torch.nn.Module")
            blocks.add_module(f"block{site.index + 1}", module)
            shape = block.infer(self, shape, replace(ctx, findings=[]), site).shape
        return blocks

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        def stages(name: str) -> "SearchStrategy[Layer]":
            return st.composite(lambda draw: BLOCKS[name].draw(draw, cls, x))()

        return st.one_of(*(stages(name) for name in block_names(builtin_only=True)))
