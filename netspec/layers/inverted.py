"""The `inverted` block of ``stage``: MobileNetV2's inverted residual, MobileNetV3's bneck, EfficientNet's MBConv.

Sandler et al. 2018 (arXiv:1801.04381), Howard et al. 2019 (arXiv:1905.02244), Tan & Le 2019 (arXiv:1905.11946).
A block is an optional 1x1 expansion (when the expanded width differs from the input) + norm + act, a depthwise
`kernel` x `kernel` conv carrying the stride + norm + act, the stage's `attention` (SE in MobileNetV3/EfficientNet),
and a 1x1 linear projection + norm with no activation. The input is added back only when the stride is 1 and the
channels stay the same; there is never a conv shortcut, and nothing runs after the addition. Layout and rules follow
torchvision's ``mobilenetv2.py``, ``mobilenetv3.py`` and ``efficientnet.py``, so its weights load by position.

This module holds the block's shape rule and builder for :class:`netspec.layers.stage.Stage` (it registers no kind).
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from netspec.layers.base import Context
from netspec.layers.conv import conv_info, same_padding
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn
    from torch import nn

    from netspec.layers.stage import Stage

DEFAULT_EXPAND = 6.0
"""Expansion ratio when neither `expand` nor `width` is given (MobileNetV2's t = 6)."""
DEFAULT_KERNEL = 3


def expanded_channels(stage: "Stage", in_channels: int) -> int:
    """The block's expanded width: `width` as written, else round(in * expand) as torchvision's MobileNetV2.

    EfficientNet's make_divisible(in * t, 8) is the same whenever in * t is a multiple of 8, as in all its configs.
    """
    if stage.width is not None:
        return stage.width
    ratio = DEFAULT_EXPAND if stage.expand is None else stage.expand
    return max(int(round(in_channels * ratio)), 1)


def block_plan(stage: "Stage", in_channels: int, stride: int) -> list[tuple[str, dict[str, Any]]]:
    """The convs of one block, in order: ("expand" | "depthwise" | "project", conv params); attention after depthwise."""
    mid = expanded_channels(stage, in_channels)
    kernel = stage.kernel or DEFAULT_KERNEL
    plan: list[tuple[str, dict[str, Any]]] = []
    if mid != in_channels:
        plan.append(("expand", dict(out=mid, kernel=1, stride=1, padding=0, groups=1)))
    plan.append(("depthwise", dict(out=mid, kernel=kernel, stride=stride, padding=same_padding(kernel), groups=mid)))
    plan.append(("project", dict(out=stage.out, kernel=1, stride=1, padding=0, groups=1)))
    return plan


def residual(stage: "Stage", in_channels: int, stride: int) -> bool:
    return stride == 1 and in_channels == stage.out


def check(stage: "Stage", ctx: Context) -> None:
    """Params a stage of inverted blocks cannot use."""
    if stage.expand is not None and stage.width is not None:
        ctx.error("expand", "give `expand` (a ratio of the block's input) or `width` (the expanded channels), not both")
    if stage.groups != 1:
        ctx.error("groups", "leave 1: the inverted block's conv is depthwise (groups = its channels)")
    if stage.conv is not None:
        ctx.error("conv", "an inverted block has no conv to replace; leave `conv` out")


def infer_blocks(stage: "Stage", x: Shape, ctx: Context, *, norm: str, bias: bool) -> tuple[LayerInfo, LayerInfo]:
    """Shape rule of the stage's first two blocks: (the total after them, the total before the last of them)."""
    total = block_start = LayerInfo(x, 0, 0)
    findings_before = len(ctx.findings)
    for index in range(min(stage.depth, 2)):  # blocks after the second repeat it exactly
        stride = stage.stride if index == 0 else 1
        block_start = total
        block_ctx = replace(ctx, block_input=total.shape.channels)
        for step, conv in block_plan(stage, total.shape.channels, stride):
            total = total.then(conv_info(total.shape, ctx, bias=bias, norm=norm, **conv))
            if step == "depthwise" and stage.attention is not None:
                total = total.then(stage.attention.infer(total.shape, block_ctx.at("attention", stage.attention.kind)))
        if len(ctx.findings) > findings_before:
            break
    return total, block_start


def build_blocks(stage: "Stage", x: Shape, ctx: Context, *, norm: str, act: str, bias: bool) -> "nn.Sequential":
    from torch import nn

    from netspec.modules.conv import ConvNormAct
    from netspec.modules.inverted import InvertedResidual

    blocks = nn.Sequential()
    shape = x
    for index in range(stage.depth):
        stride = stage.stride if index == 0 else 1
        block_input = shape
        block_ctx = replace(ctx, block_input=shape.channels)
        layers = nn.Sequential()
        for step, conv in block_plan(stage, shape.channels, stride):
            layers.append(ConvNormAct(shape.channels, conv["out"], kernel=conv["kernel"], stride=conv["stride"],
                                      padding=conv["padding"], groups=conv["groups"], bias=bias, norm=norm,
                                      act="none" if step == "project" else act))
            shape = conv_info(shape, ctx, bias=bias, norm=norm, **conv).shape
            if step == "depthwise" and stage.attention is not None:
                layers.append(stage.attention.build(shape, block_ctx.at("attention", stage.attention.kind)))
        blocks.add_module(f"block{index + 1}", InvertedResidual(
            layers, residual=residual(stage, block_input.channels, stride), drop_path=ctx.drop_rate(index)))
    return blocks


def draw_stage(draw: "DrawFn", cls: type["Stage"], x: Shape, attention_kinds: list[Any]) -> "Stage":
    """A random valid stage of inverted blocks for input ``x`` (``netspec.strategies``)."""
    from hypothesis import strategies as st

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
        candidates = [kind for kind in attention_kinds if kind.accepts(after)]
        if candidates and draw(st.booleans()):
            attention = draw(draw(st.sampled_from(candidates)).strategy(after))
    else:
        expand = draw(st.sampled_from([None, 1.0, 0.5, 2.0, 3.0]))
    return cls(block="inverted", out=out, depth=draw(st.integers(1, 3)), stride=stride, kernel=kernel,
               expand=expand, width=width, attention=attention, act=draw(st.sampled_from([None, "relu6", "hardswish"])))
