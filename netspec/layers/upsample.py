"""``upsample``: resize a feature map by an integer `scale`, or to the spatial size of another entry (`to`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, Strict

from netspec.layers.base import Context, EntryName, Flag, Layer
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

MAX_SCALE = 1024
"""Largest `scale` (a 1x1 map to 1024x1024); the activation budget bounds the result further."""


@register
class Upsample(Layer):
    """Resize (N, C, H, W) by `scale` (default 2), or to the H x W of the entry `to` names (`input`: the input's).

    `mode` nearest (default) or bilinear, `align_corners` as ``torch.nn.functional.interpolate``
    (bilinear only; false by default, DANet's heads use true). No parameters.
    """

    kind = "upsample"

    scale: Annotated[int, Strict(), Field(ge=1, le=MAX_SCALE)] | None = None
    """integer factor for H and W (default 2 when `to` is not given)"""
    to: EntryName | None = None
    """resize to the H x W of this earlier entry's output (`input`: the network's input)"""
    mode: Literal["nearest", "bilinear"] = "nearest"
    """interpolation: nearest (as nn.Upsample's default) or bilinear"""
    align_corners: Flag | None = None
    """bilinear only: align the corner pixels (torch's default false; DANet uses true)"""

    def references(self) -> dict[str, str]:
        return {} if self.to is None else {"to": self.to}

    def factor(self) -> int:
        return 2 if self.scale is None else self.scale

    def check(self, x: Shape, ctx: Context) -> None:
        if x.flat:
            raise ctx.invalid(None, f"upsample needs a feature map (N, C, H, W), got {x}: it cannot resize a flat tensor")
        if self.scale is not None and self.to is not None:
            ctx.error("scale", "give `scale` or `to`, not both")
        if self.align_corners is not None and self.mode == "nearest":
            ctx.error("align_corners", "only applies with mode: bilinear")

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        self.check(x, ctx)
        if self.to is not None:
            raise ctx.invalid("to", "needs the graph: `to` names another entry")
        factor = self.factor()
        return LayerInfo(Shape(x.channels, *(None if size is None else size * factor for size in (x.height, x.width))))

    def infer_inputs(self, inputs: list[Shape], ctx: Context) -> LayerInfo:
        if self.to is None:
            return self.infer(inputs[0], ctx)
        x, target = inputs
        self.check(x, ctx)
        if target.flat:
            raise ctx.invalid("to", f"{self.to!r} is flat {target}: upsample takes its H x W from a feature map")
        return LayerInfo(Shape(x.channels, target.height, target.width))

    def build_inputs(self, inputs: list[Shape], ctx: Context) -> "nn.Module":
        from netspec.modules.resize import Resize

        return Resize(scale=None if self.to is not None else self.factor(), mode=self.mode,
                      align_corners=self.align_corners)

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        return self.build_inputs([x], ctx)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial and (x.height or 1) * (x.width or 1) <= 256

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        nearest = st.builds(cls, scale=st.sampled_from([None, 2]))
        bilinear = st.builds(cls, scale=st.sampled_from([None, 2]), mode=st.just("bilinear"),
                             align_corners=st.sampled_from([None, True, False]))
        return st.one_of(nearest, bilinear)
