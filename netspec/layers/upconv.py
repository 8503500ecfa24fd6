"""``upconv``: a transposed convolution that enlarges the map (U-Net's up-convolution)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Flag, Layer, NonNegativeInt, PositiveInt
from netspec.ops import ActName, NormName, norm_params, norm_problem
from netspec.registry import register
from netspec.scaling import Channels
from netspec.shapes import LayerInfo, Shape, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


def transposed_size(size: int | None, *, kernel: int, stride: int, padding: int) -> int | None:
    """Output length of a transposed convolution along one axis: ``(size - 1) * stride - 2 * padding + kernel``."""
    return None if size is None else (size - 1) * stride - 2 * padding + kernel


@register
class UpConv(Layer):
    """Transposed convolution (``nn.ConvTranspose2d``) with bias and, by default, no norm and no activation.

    The default `kernel` 2 and `stride` 2 double the map, as the up-convolution of U-Net
    (Ronneberger, Fischer, Brox, MICCAI 2015). `norm`/`act` do not inherit the spec's defaults.
    """

    kind = "upconv"
    paper = "Ronneberger, Fischer, Brox. U-Net: Convolutional Networks for Biomedical Image Segmentation. MICCAI 2015"

    out: Channels
    kernel: PositiveInt = 2
    stride: PositiveInt = 2
    padding: NonNegativeInt = 0
    bias: Flag = True
    norm: NormName = "none"
    act: ActName = "none"

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if x.flat:
            raise ctx.invalid(None, f"upconv needs a feature map (N, C, H, W), got {x}")
        if self.padding * 2 > self.kernel - 1:
            ctx.error("padding", f"must be at most (kernel - 1) / 2 = {(self.kernel - 1) // 2}, got {self.padding}")
        height, width = (transposed_size(size, kernel=self.kernel, stride=self.stride, padding=self.padding)
                         for size in (x.height, x.width))
        problem = norm_problem(self.norm, height, width)
        if problem:
            ctx.error("norm", problem)
        y = Shape(self.out, height, width)
        weights = x.channels * self.out * self.kernel * self.kernel
        params = weights + (self.out if self.bias else 0) + norm_params(self.norm, self.out)
        return LayerInfo(y, params, scale_macs(weights, x))  # every input position scatters k*k*out taps

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from torch import nn

        from netspec.ops import make_act, make_norm

        layers = nn.Sequential()
        layers.conv = nn.ConvTranspose2d(x.channels, self.out, self.kernel, stride=self.stride,  # type: ignore[assignment]
                                         padding=self.padding, bias=self.bias)
        if self.norm != "none":
            layers.norm = make_norm(self.norm, self.out)  # type: ignore[assignment]
        if self.act != "none":
            layers.act = make_act(self.act)  # type: ignore[assignment]
        return layers

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial and (x.height or 1) * (x.width or 1) <= 256

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, out=st.integers(1, 16), kernel=st.sampled_from([2, 3]), stride=st.sampled_from([1, 2]),
                         bias=st.booleans(), norm=st.sampled_from(["none", "batch"]))
