"""``stage``: a ResNet/ResNeXt stage of plain, basic or bottleneck blocks, with optional attention in each block."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, Strict

from netspec.layers import inverted
from netspec.layers.base import AttentionEntry, Context, ConvEntry, Flag, Layer, OddInt, PositiveInt, kinds_of
from netspec.layers.conv import conv_info
from netspec.layers.maxpool import window_info
from netspec.ops import ActName, NormName
from netspec.registry import KINDS, register
from netspec.scaling import Channels, Depth
from netspec.shapes import LayerInfo, Shape, add_macs, conv_out_size

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

BlockName = Literal["plain", "basic", "bottleneck", "inverted"]
SEPARATE_RULES = {"inverted": inverted}
"""Blocks whose shape rule and builder live in their own module (``infer_blocks``, ``build_blocks``, ``check``)."""
Ratio = Annotated[float, Strict(), Field(gt=0, le=64, allow_inf_nan=False)]
MAX_BLOCKS = 1024
"""Most blocks in one stage (after scaling); ResNet-1202 has 200."""


def _repeat_last_block(total: LayerInfo, block_start: LayerInfo, times: int) -> LayerInfo:
    """``total`` plus ``times`` more copies of its last block (which began at ``block_start``): O(1) in the depth."""
    params = total.params - block_start.params
    macs = None if total.macs is None or block_start.macs is None else total.macs - block_start.macs
    return LayerInfo(total.shape, total.params + times * params, add_macs(total.macs, None if macs is None else times * macs))


@register
class Stage(Layer):
    """ResNet stage: `depth` blocks; the first has `stride` and a 1x1 conv+norm shortcut when the shape changes.

    `plain` and `basic` are two 3x3 convs (plain without shortcut), `bottleneck` is 1x1 -> 3x3 (stride,
    groups) -> 1x1 with `width` mid channels (default out/4; ResNeXt sets `width` and `groups`). The
    `attention` kind runs on the block's output before the residual addition, as in SENet and CBAM. `conv`
    names a kind that replaces the block's strided 3x3 conv (bottleneck: the middle one), e.g. `sk` for SKNet.
    `dilation` D keeps the map size instead of striding, as torchvision's `replace_stride_with_dilation`
    (DeepLab, DANet): the 3x3 conv of the first block runs at dilation max(D // 2, 1), the others at D.
    ResNeSt's options: `avd` strides a strided block with a 3x3 average pool (padding 1) after its 3x3 conv,
    which then runs at stride 1; `avg_down` makes a strided projection shortcut an average pool (stride x stride,
    ceil mode, padding excluded) before a stride-1 1x1 conv + norm (ResNet-D). `attention_at: conv` runs the
    attention after the block's (last) 3x3 conv, before its norm, as the official SimAM ResNets place SimAM;
    `attention_at: mid` runs it after that conv's norm and act (timm's byobnet bottlenecks: SE on the mid width).
    `inverted` is MobileNetV2/V3's inverted residual and EfficientNet's MBConv (netspec.layers.inverted): 1x1
    expansion to `width` (or `expand` x the input), depthwise `kernel` conv with the stride, `attention`, linear
    1x1 projection; the input is added only at stride 1 with unchanged channels.
    """

    kind = "stage"
    paper = "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 (arXiv:1512.03385)"

    out: Channels
    block: BlockName = "bottleneck"
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
    """inverted: expanded channels = round(ratio x the block's input) (default 6; or give `width`)"""
    kernel: OddInt | None = None
    """inverted: the depthwise conv's kernel (default 3)"""

    def block_count(self) -> int:
        return self.depth

    def build_units(self) -> int:
        """Per block: its convs (conv, norm, act each), the shortcut, the attention or conv kind it holds."""
        convs = 3 if self.block == "bottleneck" else 2
        inner = (self.attention.build_units() if self.attention else 0) + (self.conv.build_units() if self.conv else 0)
        return 1 + self.depth * (3 * convs + 4 + inner)

    def mid_channels(self) -> int:
        if self.width is not None:
            return self.width
        return max(self.out // 4, 1) if self.block == "bottleneck" else self.out

    def block_dilation(self, index: int) -> int:
        """Dilation of block ``index``'s 3x3 conv: torchvision runs the first at the previous stage's dilation."""
        return max(self.dilation // 2, 1) if index == 0 else self.dilation

    def body_plan(self, in_channels: int, stride: int, dilation: int = 1) -> list[dict[str, int]]:
        """The convs of one block's body: (out, kernel, stride, padding, dilation, groups); the last has no act."""
        mid = self.mid_channels()
        if self.block == "bottleneck":
            return [
                dict(out=mid, kernel=1, stride=1, padding=0, groups=1),
                dict(out=mid, kernel=3, stride=stride, padding=dilation, dilation=dilation, groups=self.groups),
                dict(out=self.out, kernel=1, stride=1, padding=0, groups=1),
            ]
        return [
            dict(out=mid, kernel=3, stride=stride, padding=1, groups=self.groups),
            dict(out=self.out, kernel=3, stride=1, padding=1, groups=1),
        ]

    def replaced(self, position: int) -> bool:
        """Whether body conv ``position`` is the strided 3x3 conv that the `conv` kind stands in for."""
        return self.conv is not None and position == (1 if self.block == "bottleneck" else 0)

    def attends_after(self, position: int) -> bool:
        """Whether `attention` follows body conv ``position`` (before its norm): the 3x3 conv at position 1."""
        return self.attention_at in ("conv", "mid") and position == 1

    def avd_split(self, conv: dict[str, int]) -> tuple[int, dict[str, int]]:
        """With `avd`, a strided conv becomes (pool stride, the conv at stride 1); else (1, the conv)."""
        if not self.avd or conv["stride"] == 1:
            return 1, conv
        return conv["stride"], {**conv, "stride": 1}

    def needs_projection(self, in_channels: int, stride: int) -> bool:
        return self.block != "plain" and (stride != 1 or in_channels != self.out)

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        norm = self.norm or ctx.norm
        bias = norm == "none"
        total = LayerInfo(x, 0, 0)
        findings_before = len(ctx.findings)
        if self.conv is not None and self.groups != 1:
            ctx.error("groups", f"leave 1: the `conv` kind sets its own groups ({self.conv.kind}: {{groups: ...}})")
        inner = replace(ctx, norm=norm, act=self.act or ctx.act).at("conv", self.conv.kind) if self.conv else ctx
        if self.depth > MAX_BLOCKS:
            raise ctx.invalid("depth", f"at most {MAX_BLOCKS} blocks per stage, got {self.depth}")
        if self.dilation > 1:
            self.check_dilation(ctx)
        rule = SEPARATE_RULES.get(self.block)
        if rule is not None:
            for name in ("avd", "avg_down", "attention_at"):
                if name in self.model_fields_set and getattr(self, name) != type(self).model_fields[name].default:
                    ctx.error(name, f"only for ResNet blocks (basic, bottleneck), not block: {self.block}")
            rule.check(self, ctx)
            total, block_start = rule.infer_blocks(self, x, ctx, norm=norm, bias=bias)
            return _repeat_last_block(total, block_start, self.depth - 2) if self.depth > 2 else total
        for name in ("expand", "kernel"):
            if getattr(self, name) is not None:
                ctx.error(name, f"only for block: inverted (the {self.block} block's convs are 3x3)")
        block_start = total
        for index in range(min(self.depth, 2)):  # blocks after the second repeat it exactly: counted below
            stride = self.stride if index == 0 else 1
            block_input = total.shape
            block_start = total
            for position, conv in enumerate(self.body_plan(block_input.channels, stride, self.block_dilation(index))):
                pool_stride, conv = self.avd_split(conv)
                if self.conv is not None and self.replaced(position):
                    info = self.conv.block_conv_info(total.shape, inner, out=conv["out"], stride=conv["stride"])
                else:
                    info = conv_info(total.shape, ctx, bias=bias, norm=norm, **conv)
                total = total.then(info)
                if self.attention is not None and self.attends_after(position):
                    at = replace(ctx, block_input=block_input.channels).at("attention", self.attention.kind)
                    total = total.then(self.attention.checked_infer(total.shape, at))
                if pool_stride > 1:
                    total = total.then(window_info(total.shape, ctx, kind="avd", kernel=3, stride=pool_stride, padding=1))
            if self.attention is not None and self.attention_at == "output":
                at = replace(ctx, block_input=block_input.channels).at("attention", self.attention.kind)
                total = total.then(self.attention.checked_infer(total.shape, at))
            if self.needs_projection(block_input.channels, stride):
                shortcut = conv_info(block_input, ctx, out=self.out, kernel=1, stride=stride, bias=bias, norm=norm)
                total = LayerInfo(total.shape, total.params + shortcut.params, add_macs(total.macs, shortcut.macs))
            if len(ctx.findings) > findings_before:
                break  # the same mistake would repeat in every block
        else:
            if self.depth > 2:
                total = _repeat_last_block(total, block_start, self.depth - 2)
        return total

    def check_dilation(self, ctx: Context) -> None:
        if self.block != "bottleneck":
            ctx.error("dilation", f"dilation needs block: bottleneck (torchvision's {self.block} block has none)")
        if self.conv is not None:
            ctx.error("dilation", f"leave 1 with `conv: {self.conv.kind}`: that kind sets its own dilations")
        if self.stride != 1:
            ctx.error("stride", "leave 1 with dilation: the dilation replaces the stride and keeps the map size "
                                "(torchvision's replace_stride_with_dilation)")

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from torch import nn

        from netspec.modules.conv import ConvNormAct
        from netspec.modules.residual import ResidualBlock
        from netspec.ops import make_act

        norm = self.norm or ctx.norm
        act = self.act or ctx.act
        bias = norm == "none"
        rule = SEPARATE_RULES.get(self.block)
        if rule is not None:
            return rule.build_blocks(self, x, ctx, norm=norm, act=act, bias=bias)
        inner = replace(ctx, norm=norm, act=act).at("conv", self.conv.kind) if self.conv else ctx
        blocks = nn.Sequential()
        shape = x
        for index in range(self.depth):
            stride = self.stride if index == 0 else 1
            block_input = shape
            body = nn.Sequential()
            plan = self.body_plan(shape.channels, stride, self.block_dilation(index))
            for position, conv in enumerate(plan):
                last = position == len(plan) - 1
                pool_stride, conv = self.avd_split(conv)
                if self.conv is not None and self.replaced(position):
                    unit = self.conv.build_block_conv(shape, inner, out=conv["out"], stride=conv["stride"])
                    shape = self.conv.block_conv_info(shape, inner, out=conv["out"], stride=conv["stride"]).shape
                else:
                    unit = ConvNormAct(shape.channels, conv["out"], kernel=conv["kernel"], stride=conv["stride"],
                                       padding=conv["padding"], dilation=conv.get("dilation", 1), groups=conv["groups"],
                                       bias=bias, norm=norm, act="none" if last else act)
                    shape = conv_info(shape, ctx, bias=bias, norm=norm, **conv).shape
                if self.attention is not None and self.attends_after(position):
                    attention = self.attention.checked_build(shape, replace(ctx, block_input=block_input.channels).at("attention", self.attention.kind))
                    parts = list(unit.named_children()) if isinstance(unit, ConvNormAct) else [("conv", unit)]
                    at = 1 if self.attention_at == "conv" else len(parts)  # mid: after the conv's norm and act
                    unit = nn.Sequential(OrderedDict([*parts[:at], ("attention", attention), *parts[at:]]))
                body.add_module(f"conv{position + 1}", unit)
                if pool_stride > 1:
                    body.add_module("avd", nn.AvgPool2d(3, pool_stride, padding=1))
                    shape = window_info(shape, ctx, kind="avd", kernel=3, stride=pool_stride, padding=1).shape
            attention = None
            if self.attention is not None and self.attention_at == "output":
                at = replace(ctx, block_input=block_input.channels).at("attention", self.attention.kind)
                attention = self.attention.checked_build(shape, at)
            shortcut = None
            if self.needs_projection(block_input.channels, stride):
                shortcut = ConvNormAct(block_input.channels, self.out, kernel=1, stride=1 if self.avg_down else stride,
                                       bias=bias, norm=norm, act="none")
                if self.avg_down and stride > 1:
                    pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
                    shortcut = nn.Sequential(OrderedDict([("pool", pool), *shortcut.named_children()]))
            elif self.block != "plain":
                shortcut = nn.Identity()
            blocks.add_module(f"block{index + 1}", ResidualBlock(body, attention, shortcut, make_act(act),
                                                                 drop_path=ctx.drop_rate(index)))
        return blocks

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        @st.composite
        def stages(draw: st.DrawFn) -> Stage:
            block = draw(st.sampled_from(["plain", "basic", "bottleneck"]))
            groups, width = 1, None
            if block == "bottleneck":
                groups = draw(st.sampled_from([1, 2]))
                width = draw(st.one_of(st.none(), st.integers(1, 4).map(lambda k: k * groups)))
                out = 4 * groups * draw(st.integers(1, 3)) if width is None else draw(st.integers(1, 16))
            else:
                width = draw(st.one_of(st.none(), st.integers(1, 16)))
                out = draw(st.integers(1, 16))
            conv = None
            conv_kinds = [KINDS[k] for k in kinds_of("conv")]
            if block == "bottleneck" and conv_kinds and draw(st.booleans()):
                mid = Shape(width if width is not None else max(out // 4, 1), x.height, x.width)
                candidates = [kind for kind in conv_kinds if kind.accepts(mid)]
                if candidates:  # a kind's strategy for C channels is valid as a C -> C block conv
                    conv, groups = draw(draw(st.sampled_from(candidates)).strategy(mid)), 1
            stride = draw(st.sampled_from([1, 2]))
            dilation = 1
            if block == "bottleneck" and conv is None and stride == 1:
                dilation = draw(st.sampled_from([1, 2, 4]))
            size = [conv_out_size(s, kernel=3, stride=stride, padding=1) for s in (x.height, x.width)]
            after = Shape(out, size[0], size[1])
            candidates = [KINDS[k] for k in kinds_of("attention") if KINDS[k].accepts(after)]
            attention = None
            if candidates and draw(st.booleans()):
                attention = draw(draw(st.sampled_from(candidates)).strategy(after))
            return cls(out=out, block=block, depth=draw(st.integers(1, 2)), stride=stride, dilation=dilation, width=width,
                       groups=groups, attention=attention, conv=conv, avd=draw(st.booleans()),
                       avg_down=draw(st.booleans()))

        @st.composite
        def inverted_stages(draw: st.DrawFn) -> Stage:
            return inverted.draw_stage(draw, cls, x, [KINDS[k] for k in kinds_of("attention")])

        return st.one_of(stages(), inverted_stages())
