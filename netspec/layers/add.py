"""``add``: the elementwise sum of several inputs (a residual written as a graph, DANet's fused branches)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Merge, broadcast_inputs
from netspec.ops import ActName
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


def broadcast_companions(x: Shape) -> "SearchStrategy[list[Shape]]":
    """Inputs that broadcast against ``x``: the same shape, or an (N, C, 1, 1) gate of a feature map."""
    from hypothesis import strategies as st

    same = st.just(x)
    gate = st.just(Shape(x.channels, 1, 1))
    return st.lists(same if x.flat else st.one_of(same, gate), min_size=1, max_size=2)


@register
class Add(Merge):
    """Elementwise sum of the `from:` inputs: equal shapes, or an (N, C, 1, 1) term added at every position."""

    kind = "add"

    act: ActName = "none"
    """activation applied to the sum (HRNet's fuse layers: `relu`); not the spec's `defaults.act`"""

    def merge(self, inputs: list[Shape], ctx: Context) -> LayerInfo:
        return LayerInfo(broadcast_inputs(inputs, ctx, self.kind))  # additions are not counted as MACs

    def build_inputs(self, inputs: list[Shape], ctx: Context) -> "nn.Module":
        from netspec.modules.merge import Add as AddModule, AddAct
        from netspec.ops import make_act

        return AddModule() if self.act == "none" else AddAct(make_act(self.act))

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Add]":  # type: ignore[override]
        from hypothesis import strategies as st

        return st.builds(cls, act=st.sampled_from(["none", "none", "relu", "silu"]))

    @classmethod
    def companions(cls, x: Shape) -> "SearchStrategy[list[Shape]]":
        return broadcast_companions(x)
