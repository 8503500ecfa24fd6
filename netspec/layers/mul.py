"""``mul``: the elementwise product of several inputs (a gate computed in its own branch, as SE or CBAM do)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.add import broadcast_companions
from netspec.layers.base import Context, Merge, broadcast_inputs
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class Mul(Merge):
    """Elementwise product of the `from:` inputs: equal shapes, or an (N, C, 1, 1) gate scaling every position."""

    kind = "mul"

    def merge(self, inputs: list[Shape], ctx: Context) -> LayerInfo:
        shape = broadcast_inputs(inputs, ctx, self.kind)
        per_position = scale_macs(shape.channels * (len(inputs) - 1), shape)  # gating multiplies count as MACs
        return LayerInfo(shape, 0, per_position)

    def build_inputs(self, inputs: list[Shape], ctx: Context) -> "nn.Module":
        from netspec.modules.merge import Mul as MulModule

        return MulModule()

    @classmethod
    def companions(cls, x: Shape) -> "SearchStrategy[list[Shape]]":
        return broadcast_companions(x)
