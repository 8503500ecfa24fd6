"""What the ResNet blocks (``plain``, ``basic``, ``bottleneck``) share: body convs, attention, shortcut, act.

He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 (arXiv:1512.03385).
A block is its body's convs (each conv + norm + act, the last without act), the stage's `attention` on the body's
output (or after its last 3x3 conv with ``attention_at: conv``), a shortcut (identity, or a 1x1 conv + norm
projection when the shape changes; none in a plain block), the addition, then the act: torchvision's layout.
The `conv` kind stands in for the strided 3x3 conv (SKNet, ResNeSt); `avd` and `avg_down` are ResNeSt's options.
Each block file gives its ``plan`` (the body's convs) and which conv is the replaceable 3x3.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from netspec.blocks.base import Block, Site, StageParams
from netspec.layers.base import Context
from netspec.layers.conv import conv_info
from netspec.layers.maxpool import window_info
from netspec.parsing import kinds_of
from netspec.shapes import LayerInfo, Shape, add_macs, conv_out_size

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn
    from torch import nn

RESNET_OPTIONS = frozenset({"width", "groups", "attention", "conv", "avd", "avg_down", "attention_at"})


class ResNetBlock(Block):
    """Base of the ResNet blocks: a subclass gives ``plan`` and ``replaced_position``."""

    options = RESNET_OPTIONS
    convs = 2
    replaced_position = 0
    """The body conv that the `conv` kind replaces and `attention_at: conv` follows (the strided 3x3)."""
    shortcut = True
    attention_in_body: int | None = None
    """Body conv after whose unit (conv, norm, act) the `attention` runs, inside the body (RegNetY's SE after its
    3x3 conv); ``None``: where `attention_at` says."""

    def mid_channels(self, stage: StageParams) -> int:
        return stage.width if stage.width is not None else stage.out

    def plan(self, stage: StageParams, stride: int, dilation: int) -> list[dict[str, int]]:
        """The body's convs: (out, kernel, stride, padding, dilation, groups); the last has no act."""
        raise NotImplementedError

    def dilation(self, stage: StageParams, index: int) -> int:
        """Dilation of block ``index``'s 3x3 conv: torchvision runs the first at the previous stage's dilation."""
        return max(stage.dilation // 2, 1) if index == 0 else stage.dilation

    def attends_after(self, stage: StageParams, position: int) -> bool:
        """Whether `attention` follows body conv ``position`` (``attention_at: conv``: after the block's last 3x3
        conv, the second conv of every ResNet block)."""
        return stage.attention_at in ("conv", "mid") and position == 1

    def needs_projection(self, stage: StageParams, in_channels: int, stride: int) -> bool:
        return self.shortcut and (stride != 1 or in_channels != stage.out)

    def units(self, stage: StageParams) -> int:
        inner = (stage.attention.build_units() if stage.attention else 0) + (stage.conv.build_units() if stage.conv else 0)
        return 3 * self.convs + 4 + inner

    def check(self, stage: StageParams, ctx: Context) -> None:
        if stage.conv is not None and stage.groups != 1:
            ctx.error("groups", f"leave 1: the `conv` kind sets its own groups ({stage.conv.kind}: {{groups: ...}})")
        if stage.dilation > 1:
            if stage.conv is not None:
                ctx.error("dilation", f"leave 1 with `conv: {stage.conv.kind}`: that kind sets its own dilations")
            if stage.stride != 1:
                ctx.error("stride", "leave 1 with dilation: the dilation replaces the stride and keeps the map size "
                                    "(torchvision's replace_stride_with_dilation)")

    @staticmethod
    def avd_split(stage: StageParams, conv: dict[str, int]) -> tuple[int, dict[str, int]]:
        """With `avd`, a strided conv becomes (pool stride, the conv at stride 1); else (1, the conv)."""
        if not stage.avd or conv["stride"] == 1:
            return 1, conv
        return conv["stride"], {**conv, "stride": 1}

    def infer(self, stage: StageParams, x: Shape, ctx: Context, site: Site) -> LayerInfo:
        inner = replace(ctx, norm=site.norm, act=site.act).at("conv", stage.conv.kind) if stage.conv else ctx
        at = replace(ctx, block_input=x.channels).at("attention", stage.attention.kind) if stage.attention else ctx
        total = LayerInfo(x, 0, 0)
        for position, conv in enumerate(self.plan(stage, site.stride, self.dilation(stage, site.index))):
            pool_stride, conv = self.avd_split(stage, conv)
            if stage.conv is not None and position == self.replaced_position:
                info = stage.conv.block_conv_info(total.shape, inner, out=conv["out"], stride=conv["stride"])
            else:
                info = conv_info(total.shape, ctx, bias=site.bias, norm=site.norm, **conv)
            total = total.then(info)
            if stage.attention is not None and self.attends_after(stage, position):
                total = total.then(stage.attention.checked_infer(total.shape, at))
            if pool_stride > 1:
                total = total.then(window_info(total.shape, ctx, kind="avd", kernel=3, stride=pool_stride, padding=1))
            if stage.attention is not None and position == self.attention_in_body:
                total = total.then(stage.attention.checked_infer(total.shape, at))
        if stage.attention is not None and stage.attention_at == "output" and self.attention_in_body is None:
            total = total.then(stage.attention.checked_infer(total.shape, at))
        if self.needs_projection(stage, x.channels, site.stride):
            shortcut = conv_info(x, ctx, out=stage.out, kernel=1, stride=site.stride, bias=site.bias, norm=site.norm)
            total = LayerInfo(total.shape, total.params + shortcut.params, add_macs(total.macs, shortcut.macs))
        return total

    def build(self, stage: StageParams, x: Shape, ctx: Context, site: Site) -> "nn.Module":
        from torch import nn

        from netspec.modules.conv import ConvNormAct
        from netspec.modules.residual import ResidualBlock
        from netspec.ops import make_act

        inner = replace(ctx, norm=site.norm, act=site.act).at("conv", stage.conv.kind) if stage.conv else ctx
        at = replace(ctx, block_input=x.channels).at("attention", stage.attention.kind) if stage.attention else ctx
        body = nn.Sequential()
        shape = x
        plan = self.plan(stage, site.stride, self.dilation(stage, site.index))
        for position, conv in enumerate(plan):
            last = position == len(plan) - 1
            pool_stride, conv = self.avd_split(stage, conv)
            if stage.conv is not None and position == self.replaced_position:
                unit = stage.conv.build_block_conv(shape, inner, out=conv["out"], stride=conv["stride"])
                shape = stage.conv.block_conv_info(shape, inner, out=conv["out"], stride=conv["stride"]).shape
            else:
                unit = ConvNormAct(shape.channels, conv["out"], kernel=conv["kernel"], stride=conv["stride"],
                                   padding=conv["padding"], dilation=conv.get("dilation", 1), groups=conv["groups"],
                                   bias=site.bias, norm=site.norm, act="none" if last else site.act)
                shape = conv_info(shape, ctx, bias=site.bias, norm=site.norm, **conv).shape
            if stage.attention is not None and self.attends_after(stage, position):
                attention = stage.attention.checked_build(shape, at)
                parts = list(unit.named_children()) if isinstance(unit, ConvNormAct) else [("conv", unit)]
                at = 1 if stage.attention_at == "conv" else len(parts)  # mid: after the conv's norm and act
                unit = nn.Sequential(OrderedDict([*parts[:at], ("attention", attention), *parts[at:]]))
            body.add_module(f"conv{position + 1}", unit)
            if pool_stride > 1:
                body.add_module("avd", nn.AvgPool2d(3, pool_stride, padding=1))
                shape = window_info(shape, ctx, kind="avd", kernel=3, stride=pool_stride, padding=1).shape
            if stage.attention is not None and position == self.attention_in_body:
                body.add_module("attention", stage.attention.checked_build(shape, at))
        attention = None
        if stage.attention is not None and stage.attention_at == "output" and self.attention_in_body is None:
            attention = stage.attention.checked_build(shape, at)
        shortcut: nn.Module | None = None
        if self.needs_projection(stage, x.channels, site.stride):
            shortcut = ConvNormAct(x.channels, stage.out, kernel=1, stride=1 if stage.avg_down else site.stride,
                                   bias=site.bias, norm=site.norm, act="none")
            if stage.avg_down and site.stride > 1:
                pool = nn.AvgPool2d(site.stride, site.stride, ceil_mode=True, count_include_pad=False)
                shortcut = nn.Sequential(OrderedDict([("pool", pool), *shortcut.named_children()]))
        elif self.shortcut:
            shortcut = nn.Identity()
        return ResidualBlock(body, attention, shortcut, make_act(site.act),
                             drop_path=ctx.drop_rate(site.index, to_last=self.drop_path_to_last))

    def draw(self, draw: "DrawFn", stage: type[Any], x: Shape) -> StageParams:
        from hypothesis import strategies as st

        from netspec.registry import KINDS

        groups, width = 1, None
        if self.name == "bottleneck":
            groups = draw(st.sampled_from([1, 2]))
            width = draw(st.one_of(st.none(), st.integers(1, 4).map(lambda k: k * groups)))
            out = 4 * groups * draw(st.integers(1, 3)) if width is None else draw(st.integers(1, 16))
        else:
            width = draw(st.one_of(st.none(), st.integers(1, 16)))
            out = draw(st.integers(1, 16))
        conv = None
        conv_kinds = [KINDS[k] for k in kinds_of("conv")]
        if self.name == "bottleneck" and conv_kinds and draw(st.booleans()):
            mid = Shape(width if width is not None else max(out // 4, 1), x.height, x.width)
            candidates = [kind for kind in conv_kinds if kind.accepts(mid)]
            if candidates:  # a kind's strategy for C channels is valid as a C -> C block conv
                conv, groups = draw(draw(st.sampled_from(candidates)).strategy(mid)), 1
        stride = draw(st.sampled_from([1, 2]))
        if conv is not None and stride > 1 and not _runs_at(conv, mid, stride):
            stride = 1  # the kind was drawn for the input's size; the later blocks' smaller maps may not suit it
        dilation = 1
        if self.name == "bottleneck" and conv is None and stride == 1:
            dilation = draw(st.sampled_from([1, 2, 4]))
        size = [conv_out_size(s, kernel=3, stride=stride, padding=1) for s in (x.height, x.width)]
        after = Shape(out, size[0], size[1])
        candidates = [KINDS[k] for k in kinds_of("attention") if KINDS[k].accepts(after)]
        attention = None
        if candidates and draw(st.booleans()):
            attention = draw(draw(st.sampled_from(candidates)).strategy(after))
        params: dict[str, Any] = dict(out=out, block=self.name, depth=draw(st.integers(1, 2)), stride=stride,
                                      width=width, groups=groups, attention=attention, conv=conv)
        if self.name == "bottleneck":
            params["dilation"] = dilation
        params.update(avd=draw(st.booleans()), avg_down=draw(st.booleans()))
        return stage(**params)


def _runs_at(conv: Any, x: Shape, stride: int) -> bool:
    """Whether the block conv kind ``conv`` (drawn for ``x``'s size) is also valid on the map after ``stride``,
    where the stage's later blocks run it (position tables and blocked windows need their own sizes)."""
    from netspec.errors import Invalid, SpecError

    if x.height is None or x.width is None:
        return True
    size = [conv_out_size(s, kernel=3, stride=stride, padding=1) for s in (x.height, x.width)]
    after, ctx = Shape(x.channels, size[0], size[1]), Context()
    try:
        conv.block_conv_info(after, ctx, out=x.channels, stride=1)
    except (Invalid, SpecError, ValueError):
        return False
    return not ctx.findings
