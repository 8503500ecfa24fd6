"""``sppf``: YOLOv5/v8's fast spatial pyramid pooling (Ultralytics ``SPPF``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context, Layer, OddInt
from netspec.layers.conv import conv_info
from netspec.ops import ActName, NormName
from netspec.registry import register
from netspec.scaling import Channels
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class SPPF(Layer):
    """SPPF: 1x1 conv to h (h = in/2), three chained `kernel` max-pools (stride 1), concat of the 4 maps, 1x1 conv.

    Equivalent to SPP with kernels k, 2k-1, 3k-2 in parallel (5, 9, 13), at a third of the pooling cost. Both
    convs are conv + norm + act, by default the spec's (YOLO specs: BN + SiLU); `out` scales with `scale.width`.
    """

    kind = "sppf"
    paper = "Jocher et al. Ultralytics YOLOv5/YOLOv8 (2020-2023), ultralytics/nn/modules/block.py SPPF"

    out: Channels
    """output channels"""
    kernel: OddInt = 5
    """odd max-pool window, applied three times at stride 1 with padding kernel // 2 (the size is kept)"""
    norm: NormName | None = None
    act: ActName | None = None

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        if not x.flat and x.channels < 2:
            raise ctx.invalid(None, f"sppf needs at least 2 input channels (the hidden width is in // 2), got {x}")
        norm = self.norm or ctx.norm
        bias = norm == "none"
        total = conv_info(x, ctx, out=x.channels // 2, kernel=1, bias=bias, norm=norm)
        pooled = Shape(4 * total.shape.channels, total.shape.height, total.shape.width)  # max-pools: no MACs counted
        return total.then(conv_info(pooled, ctx, out=self.out, kernel=1, bias=bias, norm=norm))

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.yolo import SPPF as SPPFModule

        return SPPFModule(x.channels, self.out, hidden=x.channels // 2, kernel=self.kernel,
                           norm=self.norm or ctx.norm, act=self.act or ctx.act)

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial and x.channels >= 2

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, out=st.integers(1, 16), kernel=st.sampled_from([1, 3, 5]),
                         norm=st.sampled_from([None, "batch", "none"]), act=st.sampled_from([None, "silu", "relu"]))
