"""``avgpool``: global average pooling to (N, C), or average pooling over windows when `kernel` is given."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, Strict

from netspec.layers.base import Context, Layer, NonNegativeInt, PositiveInt
from netspec.layers.maxpool import window_info
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape, fitting_kernels

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


MAX_POOLED_SIZE = 4096
"""Largest `size` of adaptive pooling."""


@register
class AvgPool(Layer):
    """Average pooling: global to (N, C); adaptive to (N, C, size, size) with `size`; or over `kernel` windows.

    `stride` defaults to `kernel`; `size: 1` is DeepLab's image pooling (the map kept as (N, C, 1, 1)).
    """

    kind = "avgpool"

    size: Annotated[int, Strict(), Field(ge=1, le=MAX_POOLED_SIZE)] | None = None
    """adaptive pooling to a size x size map that keeps (N, C, size, size) (DeepLab's image pooling: 1)"""
    kernel: PositiveInt | None = None
    stride: PositiveInt | None = None
    padding: NonNegativeInt = 0

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if self.size is not None:
            if x.flat:
                raise ctx.invalid(None, f"adaptive average pooling needs a feature map (N, C, H, W), got {x}")
            for name in ("kernel", "stride", "padding"):
                if name in self.model_fields_set:
                    ctx.error(name, "does not apply with `size` (adaptive pooling picks its own windows)")
            return LayerInfo(Shape(x.channels, self.size, self.size))
        if self.kernel is None:
            if x.flat:
                raise ctx.invalid(None, f"global average pooling needs a feature map (N, C, H, W), got {x}")
            for name in ("stride", "padding"):
                if name in self.model_fields_set:
                    ctx.error(name, "only applies with `kernel` (global pooling has no window)")
            return LayerInfo(Shape(x.channels, flat=True))
        stride = self.kernel if self.stride is None else self.stride
        return window_info(x, ctx, kind=self.kind, kernel=self.kernel, stride=stride, padding=self.padding)

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from torch import nn

        if self.size is not None:
            return nn.AdaptiveAvgPool2d(self.size)
        if self.kernel is None:
            return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        stride = self.kernel if self.stride is None else self.stride
        return nn.AvgPool2d(self.kernel, stride=stride, padding=self.padding)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        kernels = fitting_kernels(x, (1, 2, 3), padded=False)  # avgpool pads none by default
        local = st.builds(cls, kernel=st.sampled_from(kernels), stride=st.sampled_from([None, 1, 2]))
        return st.one_of(st.just(cls()), local, st.builds(cls, size=st.integers(1, 3)))
