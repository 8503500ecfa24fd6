"""``maxpool``: max pooling over windows."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Layer, NonNegativeInt, PositiveInt
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape, conv_out_size, fitting_kernels

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


def window_info(x: Shape, ctx: Context, *, kind: str, kernel: int, stride: int, padding: int) -> LayerInfo:
    """Shape rule of a pooling window (no parameters, no MACs); shared by max and average pooling."""
    if x.flat:
        raise ctx.invalid(None, f"{kind} needs a feature map (N, C, H, W), got {x}")
    if padding > kernel // 2:
        ctx.error("padding", f"must be at most half the kernel ({kernel // 2}), got {padding}")
    height, width = (conv_out_size(size, kernel=kernel, stride=stride, padding=padding) for size in (x.height, x.width))
    if (height is not None and height < 1) or (width is not None and width < 1):
        raise ctx.invalid("kernel", f"a {kernel}x{kernel} window does not fit the {x.height}x{x.width} map (padding {padding})")
    return LayerInfo(Shape(x.channels, height, width))


@register
class MaxPool(Layer):
    """Max pooling; `stride` defaults to `kernel`, `padding` to (kernel-1)//2 (3/2/1 as in ResNet)."""

    kind = "maxpool"

    kernel: PositiveInt = 2
    stride: PositiveInt | None = None
    padding: NonNegativeInt | None = None

    def window(self) -> dict[str, int]:
        return dict(
            kernel=self.kernel,
            stride=self.kernel if self.stride is None else self.stride,
            padding=(self.kernel - 1) // 2 if self.padding is None else self.padding,
        )

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        return window_info(x, ctx, kind=self.kind, **self.window())

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from torch import nn

        window = self.window()
        return nn.MaxPool2d(window["kernel"], stride=window["stride"], padding=window["padding"])

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        kernels = fitting_kernels(x, (1, 2, 3))
        return st.builds(cls, kernel=st.sampled_from(kernels), stride=st.sampled_from([None, 1, 2]))
