"""``ghostconv``: GhostNet's ghost module as Ultralytics' ``GhostConv`` (YOLOv8-ghost's downsampling convs)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Layer, PositiveInt
from netspec.layers.conv import conv_info
from netspec.ops import ActName, NormName
from netspec.registry import register
from netspec.scaling import Channels
from netspec.shapes import LayerInfo, Shape, fitting_kernels

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


def ghost_info(x: Shape, ctx: Context, *, out: int, kernel: int = 1, stride: int = 1, norm: str,
               blame: str | None = None) -> LayerInfo:
    """Shape rule of a ghost module: a ``kernel``/``stride`` conv to h = out // 2 (padding kernel // 2), a depthwise
    5x5 conv of it, both kept: 2h channels (``out`` rounded down to even, as Ultralytics)."""
    bias = norm == "none"
    hidden = out // 2
    primary = conv_info(x, ctx, out=hidden, kernel=kernel, stride=stride, padding=kernel // 2, bias=bias, norm=norm,
                        blame=blame)
    cheap = conv_info(primary.shape, ctx, out=hidden, kernel=5, padding=2, groups=hidden, bias=bias, norm=norm)
    both = primary.then(cheap)
    return LayerInfo(Shape(2 * hidden, both.shape.height, both.shape.width), both.params, both.macs)


@register
class GhostConv(Layer):
    """Ghost module (Han et al., GhostNet, CVPR 2020) as Ultralytics' GhostConv: a `kernel`/`stride` conv to
    h = out/2, then a cheap depthwise 5x5 conv of those maps; output both, concatenated (2h = `out`).

    Each conv is conv + norm + act, by default the spec's (YOLO specs: BN + SiLU). `out` scales with `scale.width`;
    the kernel and stride never do. An odd `out` gives out - 1 channels, as Ultralytics' c_ = c2 // 2 does.
    """

    kind = "ghostconv"
    paper = "Han et al. GhostNet: More Features from Cheap Operations, CVPR 2020; ultralytics/nn/modules/conv.py GhostConv"

    out: Channels
    """output channels (2h, h = out // 2)"""
    kernel: PositiveInt = 1
    """kernel of the primary conv (padding kernel // 2, as Ultralytics' autopad)"""
    stride: PositiveInt = 1
    """stride of the primary conv"""
    norm: NormName | None = None
    act: ActName | None = None

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if self.out < 2:
            raise ctx.invalid("out", f"must be at least 2 (the primary conv makes out // 2 maps), got {self.out}")
        blame = "kernel" if "kernel" in self.model_fields_set else None
        return ghost_info(x, ctx, out=self.out, kernel=self.kernel, stride=self.stride, norm=self.norm or ctx.norm,
                          blame=blame)

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.yolo import GhostConv as GhostConvModule

        return GhostConvModule(x.channels, self.out, kernel=self.kernel, stride=self.stride,
                               norm=self.norm or ctx.norm, act=self.act or ctx.act)

    def build_units(self) -> int:
        return 7

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, out=st.integers(2, 16), kernel=st.sampled_from(fitting_kernels(x, (1, 3))),
                         stride=st.sampled_from([1, 2]), norm=st.sampled_from([None, "batch", "none"]),
                         act=st.sampled_from([None, "silu", "relu"]))
