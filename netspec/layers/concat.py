"""``concat``: concatenate several inputs along the channels (U-Net skips, YOLO necks, ASPP branches)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Merge, describe_inputs
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class Concat(Merge):
    """Concatenation along channels of the `from:` inputs, in order; their spatial sizes must be equal."""

    kind = "concat"

    def merge(self, inputs: list[Shape], ctx: Context) -> LayerInfo:
        channels = sum(x.channels for x in inputs)
        if inputs[0].flat:
            return LayerInfo(Shape(channels, flat=True))
        heights = {x.height for x in inputs if x.height is not None}
        widths = {x.width for x in inputs if x.width is not None}
        if len(heights) > 1 or len(widths) > 1:
            raise ctx.invalid(None, f"concat needs equal spatial sizes: {describe_inputs(inputs, ctx)} "
                                    "(resize one with `upsample: {to: ...}` or a strided layer)")
        sized = all(x.height is not None for x in inputs)
        return LayerInfo(Shape(channels, *(next(iter(heights)), next(iter(widths))) if sized else (None, None)))

    def build_inputs(self, inputs: list[Shape], ctx: Context) -> "nn.Module":
        from netspec.modules.merge import Concat as ConcatModule

        return ConcatModule()

    @classmethod
    def companions(cls, x: Shape) -> "SearchStrategy[list[Shape]]":
        from hypothesis import strategies as st

        other = st.integers(1, 16).map(lambda c: Shape(c, flat=True) if x.flat else Shape(c, x.height, x.width))
        return st.lists(other, min_size=1, max_size=3)
