"""``block: inverted``: MobileNetV2's inverted residual, MobileNetV3's bneck, EfficientNet's MBConv.

Sandler et al. 2018 (arXiv:1801.04381), Howard et al. 2019 (arXiv:1905.02244), Tan & Le 2019 (arXiv:1905.11946).
A block is an optional 1x1 expansion (when the expanded width differs from the input) + norm + act, a depthwise
`kernel` x `kernel` conv carrying the stride + norm + act, the stage's `attention` (SE in MobileNetV3/EfficientNet),
and a 1x1 linear projection + norm with no activation. The input is added back only when the stride is 1 and the
channels stay the same; there is never a conv shortcut, and nothing runs after the addition. Layout and rules follow
torchvision's ``mobilenetv2.py``, ``mobilenetv3.py`` and ``efficientnet.py``, so its weights load by position.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from netspec.blocks.base import Block, Site, StageParams, register_block
from netspec.layers.base import Context
from netspec.layers.conv import conv_info, same_padding
from netspec.parsing import kinds_of
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn
    from torch import nn

DEFAULT_EXPAND = 6.0
"""Expansion ratio when neither `expand` nor `width` is given (MobileNetV2's t = 6)."""
DEFAULT_KERNEL = 3


def expanded_channels(stage: StageParams, in_channels: int) -> int:
    """The block's expanded width: `width` as written, else round(in * expand) as torchvision's MobileNetV2.

    EfficientNet's make_divisible(in * t, 8) is the same whenever in * t is a multiple of 8, as in all its configs.
    """
    if stage.width is not None:
        return stage.width
    ratio = DEFAULT_EXPAND if stage.expand is None else stage.expand
    return max(int(round(in_channels * ratio)), 1)


def block_padding(stage: StageParams, kernel: int) -> int | str:
    """A k x k conv's padding: (k - 1) // 2, or TensorFlow's SAME with the stage's `padding: same`."""
    return "same" if stage.padding == "same" else same_padding(kernel)


def check_expansion(stage: StageParams, ctx: Context) -> None:
    """`expand` and `width` are two ways to give the expanded width: one at most."""
    if stage.expand is not None and stage.width is not None:
        ctx.error("expand", "give `expand` (a ratio of the block's input) or `width` (the expanded channels), not both")


@register_block
class Inverted(Block):
    """Inverted residual / MBConv: 1x1 expansion, depthwise `kernel` conv (stride), attention, linear 1x1."""

    name = "inverted"
    paper = "Sandler et al. MobileNetV2: Inverted Residuals and Linear Bottlenecks. CVPR 2018 (arXiv:1801.04381)"
    options = frozenset({"width", "expand", "kernel", "attention", "padding"})
    explained = frozenset({"groups", "conv"})

    def plan(self, stage: StageParams, in_channels: int, stride: int) -> list[tuple[str, dict[str, Any]]]:
        """The convs of one block: ("expand" | "depthwise" | "project", conv params); attention after depthwise."""
        mid = expanded_channels(stage, in_channels)
        kernel = stage.kernel or DEFAULT_KERNEL
        plan: list[tuple[str, dict[str, Any]]] = []
        if mid != in_channels:
            plan.append(("expand", dict(out=mid, kernel=1, stride=1, padding=0, groups=1)))
        plan.append(("depthwise", dict(out=mid, kernel=kernel, stride=stride, padding=block_padding(stage, kernel),
                                       groups=mid)))
        plan.append(("project", dict(out=stage.out, kernel=1, stride=1, padding=0, groups=1)))
        return plan

    def check(self, stage: StageParams, ctx: Context) -> None:
        check_expansion(stage, ctx)
        if stage.groups != 1:
            ctx.error("groups", "leave 1: the inverted block's conv is depthwise (groups = its channels)")
        if stage.conv is not None:
            ctx.error("conv", "an inverted block has no conv to replace; leave `conv` out")

    def units(self, stage: StageParams) -> int:
        return 3 * 3 + 4 + (stage.attention.build_units() if stage.attention else 0)

    def attended(self, stage: StageParams, out: Shape) -> Shape | None:
        return None if stage.width is None else Shape(stage.width, out.height, out.width)

    def infer(self, stage: StageParams, x: Shape, ctx: Context, site: Site) -> LayerInfo:
        total = LayerInfo(x, 0, 0)
        block_ctx = replace(ctx, block_input=x.channels)
        for step, conv in self.plan(stage, x.channels, site.stride):
            total = total.then(conv_info(total.shape, ctx, bias=site.bias, norm=site.norm, **conv))
            if step == "depthwise" and stage.attention is not None:
                total = total.then(stage.attention.infer(total.shape, block_ctx.at("attention", stage.attention.kind)))
        return total

    def build(self, stage: StageParams, x: Shape, ctx: Context, site: Site) -> "nn.Module":
        from torch import nn

        from netspec.modules.conv import ConvNormAct
        from netspec.modules.inverted import InvertedResidual

        shape = x
        block_ctx = replace(ctx, block_input=x.channels)
        layers = nn.Sequential()
        for step, conv in self.plan(stage, x.channels, site.stride):
            layers.append(ConvNormAct(shape.channels, conv["out"], kernel=conv["kernel"], stride=conv["stride"],
                                      padding=conv["padding"], groups=conv["groups"], bias=site.bias, norm=site.norm,
                                      act="none" if step == "project" else site.act))
            shape = conv_info(shape, ctx, bias=site.bias, norm=site.norm, **conv).shape
            if step == "depthwise" and stage.attention is not None:
                layers.append(stage.attention.build(shape, block_ctx.at("attention", stage.attention.kind)))
        residual = site.stride == 1 and x.channels == stage.out
        return InvertedResidual(layers, residual=residual, drop_path=ctx.drop_rate(site.index))

    def draw(self, draw: "DrawFn", stage: type[Any], x: Shape) -> StageParams:
        from hypothesis import strategies as st

        from netspec.registry import KINDS
        from netspec.shapes import conv_out_size

        out = draw(st.integers(1, 16))
        stride = draw(st.sampled_from([1, 2]))
        kernel = draw(st.sampled_from([None, 3, 5]))  # odd, with same padding: never shrinks a map below 1x1
        expand, width = None, None
        attention = None
        if draw(st.booleans()):  # a fixed expanded width: every block's attention sees the same channels
            width = draw(st.integers(1, 24))
            k = kernel or DEFAULT_KERNEL
            size = [conv_out_size(s, kernel=k, stride=stride, padding=same_padding(k)) for s in (x.height, x.width)]
            after = Shape(width, size[0], size[1])
            candidates = [KINDS[k] for k in kinds_of("attention") if KINDS[k].accepts(after)]
            if candidates and draw(st.booleans()):
                attention = draw(draw(st.sampled_from(candidates)).strategy(after))
        else:
            expand = draw(st.sampled_from([None, 1.0, 0.5, 2.0, 3.0]))
        return stage(block="inverted", out=out, depth=draw(st.integers(1, 3)), stride=stride, kernel=kernel,
                     expand=expand, width=width, attention=attention,
                     act=draw(st.sampled_from([None, "relu6", "hardswish"])))
