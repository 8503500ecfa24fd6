"""``block: fused``: EfficientNetV2's Fused-MBConv (Tan & Le 2021, arXiv:2104.00298).

The inverted residual with its 1x1 expansion and depthwise conv fused into one full `kernel` x `kernel` conv
carrying the stride: conv to the expanded width (`width`, or `expand` x the input, default 4) + norm + act, the
stage's `attention` (optional SE), then a 1x1 linear projection + norm without act. When the expanded width equals
the input (`expand: 1`) the block is a single `kernel` x `kernel` conv + norm + act straight to `out` (timm's
ConvBnAct, torchvision's FusedMBConv with expand ratio 1). The input is added at stride 1 with unchanged channels.
Layout as netspec's inverted block (torchvision's; timm's EdgeResidual/ConvBnAct hold the same tensors in order).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from netspec.blocks.base import Block, Site, StageParams, register_block
from netspec.blocks.inverted import block_padding, check_expansion
from netspec.layers.base import Context
from netspec.layers.conv import conv_info
from netspec.parsing import kinds_of
from netspec.shapes import LayerInfo, Shape, conv_out_size

DEFAULT_EXPAND = 4.0
"""EfficientNetV2's fused stages expand 4x (or 1x: a single conv)."""
DEFAULT_KERNEL = 3


def expanded(stage: StageParams, in_channels: int) -> int:
    if stage.width is not None:
        return stage.width
    return max(int(round(in_channels * (DEFAULT_EXPAND if stage.expand is None else stage.expand))), 1)


@register_block
class Fused(Block):
    """Fused-MBConv: full `kernel` conv expanding to `expand` x in (stride), attention, linear 1x1 projection."""

    name = "fused"
    paper = "Tan, Le. EfficientNetV2: Smaller Models and Faster Training. ICML 2021 (arXiv:2104.00298)"
    options = frozenset({"width", "expand", "kernel", "attention", "padding"})

    def plan(self, stage: StageParams, in_channels: int, stride: int) -> list[tuple[str, dict[str, Any]]]:
        """("expand" | "project", conv params): attention after "expand"; one "expand" conv straight to `out`
        (with its act) when the expanded width is the input's."""
        mid = expanded(stage, in_channels)
        kernel = stage.kernel or DEFAULT_KERNEL
        padding = block_padding(stage, kernel)
        if mid == in_channels:
            return [("expand", dict(out=stage.out, kernel=kernel, stride=stride, padding=padding, groups=1))]
        return [("expand", dict(out=mid, kernel=kernel, stride=stride, padding=padding, groups=1)),
                ("project", dict(out=stage.out, kernel=1, stride=1, padding=0, groups=1))]

    def check(self, stage: StageParams, ctx: Context) -> None:
        check_expansion(stage, ctx)

    def units(self, stage: StageParams) -> int:
        return 2 * 3 + 4 + (stage.attention.build_units() if stage.attention else 0)

    def attended(self, stage: StageParams, out: Shape) -> Shape | None:
        return None if stage.width is None else Shape(stage.width, out.height, out.width)

    def infer(self, stage: StageParams, x: Shape, ctx: Context, site: Site) -> LayerInfo:
        total = LayerInfo(x, 0, 0)
        at = replace(ctx, block_input=x.channels).at("attention", stage.attention.kind) if stage.attention else ctx
        for step, conv in self.plan(stage, x.channels, site.stride):
            total = total.then(conv_info(total.shape, ctx, bias=site.bias, norm=site.norm, **conv))
            if step == "expand" and stage.attention is not None:
                total = total.then(stage.attention.checked_infer(total.shape, at))
        return total

    def build(self, stage: StageParams, x: Shape, ctx: Context, site: Site) -> Any:
        from torch import nn

        from netspec.modules.conv import ConvNormAct
        from netspec.modules.inverted import InvertedResidual

        shape = x
        at = replace(ctx, block_input=x.channels).at("attention", stage.attention.kind) if stage.attention else ctx
        layers = nn.Sequential()
        for step, conv in self.plan(stage, x.channels, site.stride):
            layers.append(ConvNormAct(shape.channels, conv["out"], kernel=conv["kernel"], stride=conv["stride"],
                                      padding=conv["padding"], groups=1, bias=site.bias, norm=site.norm,
                                      act="none" if step == "project" else site.act))
            shape = conv_info(shape, ctx, bias=site.bias, norm=site.norm, **conv).shape
            if step == "expand" and stage.attention is not None:
                layers.append(stage.attention.checked_build(shape, at))
        residual = site.stride == 1 and x.channels == stage.out
        return InvertedResidual(layers, residual=residual, drop_path=ctx.drop_rate(site.index))

    def draw(self, draw: Any, stage: type[Any], x: Shape) -> StageParams:
        from hypothesis import strategies as st

        from netspec.registry import KINDS

        out = draw(st.integers(1, 16))
        stride = draw(st.sampled_from([1, 2]))
        kernel = draw(st.sampled_from([None, 3, 5]))
        padding = draw(st.sampled_from([None, "same"]))
        expand, width, attention = None, None, None
        if draw(st.booleans()):  # a fixed expanded width: every block's attention sees the same channels
            width = draw(st.integers(1, 24).filter(lambda w: w != x.channels))  # == input: one conv, to `out`
            k = kernel or DEFAULT_KERNEL
            size = [None if s is None else -(-s // stride) if padding else
                    conv_out_size(s, kernel=k, stride=stride, padding=k // 2) for s in (x.height, x.width)]
            after = Shape(width, size[0], size[1])
            candidates = [KINDS[k] for k in kinds_of("attention") if KINDS[k].accepts(after)]
            if candidates and draw(st.booleans()):
                attention = draw(draw(st.sampled_from(candidates)).strategy(after))
        else:
            expand = draw(st.sampled_from([None, 1.0, 2.0]))
        return stage(block="fused", out=out, depth=draw(st.integers(1, 3)), stride=stride, kernel=kernel,
                     padding=padding, expand=expand, width=width, attention=attention,
                     act=draw(st.sampled_from([None, "silu"])))
