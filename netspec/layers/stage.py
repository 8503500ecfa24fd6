"""``stage``: a ResNet/ResNeXt stage of plain, basic or bottleneck blocks, with optional attention in each block."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from netspec.layers.base import AttentionEntry, Context, ConvEntry, Layer, PositiveInt, kinds_of
from netspec.layers.conv import conv_info
from netspec.ops import ActName, NormName
from netspec.registry import KINDS, register
from netspec.scaling import Channels, Depth
from netspec.shapes import LayerInfo, Shape, add_macs, conv_out_size

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

BlockName = Literal["plain", "basic", "bottleneck"]
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
        block_start = total
        for index in range(min(self.depth, 2)):  # blocks after the second repeat it exactly: counted below
            stride = self.stride if index == 0 else 1
            block_input = total.shape
            block_start = total
            for position, conv in enumerate(self.body_plan(block_input.channels, stride, self.block_dilation(index))):
                if self.conv is not None and self.replaced(position):
                    info = self.conv.block_conv_info(total.shape, inner, out=conv["out"], stride=conv["stride"])
                else:
                    info = conv_info(total.shape, ctx, bias=bias, norm=norm, **conv)
                total = total.then(info)
            if self.attention is not None:
                total = total.then(self.attention.checked_infer(total.shape, ctx.at("attention", self.attention.kind)))
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
                if self.conv is not None and self.replaced(position):
                    unit = self.conv.build_block_conv(shape, inner, out=conv["out"], stride=conv["stride"])
                    body.add_module(f"conv{position + 1}", unit)
                    shape = self.conv.block_conv_info(shape, inner, out=conv["out"], stride=conv["stride"]).shape
                    continue
                body.add_module(
                    f"conv{position + 1}",
                    ConvNormAct(shape.channels, conv["out"], kernel=conv["kernel"], stride=conv["stride"],
                                padding=conv["padding"], dilation=conv.get("dilation", 1), groups=conv["groups"],
                                bias=bias, norm=norm, act="none" if last else act),
                )
                shape = conv_info(shape, ctx, bias=bias, norm=norm, **conv).shape
            attention = None
            if self.attention is not None:
                attention = self.attention.checked_build(shape, ctx.at("attention", self.attention.kind))
            shortcut = None
            if self.needs_projection(block_input.channels, stride):
                shortcut = ConvNormAct(block_input.channels, self.out, kernel=1, stride=stride, bias=bias,
                                       norm=norm, act="none")
            elif self.block != "plain":
                shortcut = nn.Identity()
            blocks.add_module(f"block{index + 1}", ResidualBlock(body, attention, shortcut, make_act(act)))
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
                       groups=groups, attention=attention, conv=conv)

        return stages()
