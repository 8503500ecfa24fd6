"""``c3ghost``: YOLOv5's C3 with ghost bottlenecks (Ultralytics ``C3Ghost``, YOLOv8-ghost)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Context
from netspec.layers.c3 import HalfWidthCSP
from netspec.layers.conv import conv_info
from netspec.layers.ghostconv import ghost_info
from netspec.registry import register
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

    from netspec.layers.base import Layer


@register
class C3Ghost(HalfWidthCSP):
    """Ultralytics C3Ghost: a C3 (1x1 convs `cv1`, `cv2` to h = out/2, blocks on cv1's path, concat, 1x1 `cv3`)
    whose `depth` blocks are ghost bottlenecks: x + GhostConv(1x1 to h/2) then GhostConv(1x1 back to h, no act).

    The ghost bottleneck is always residual (Ultralytics ignores C3Ghost's `shortcut`; so does netspec, and rejects
    `shortcut: false`); h must be a multiple of 4 (each ghost module halves its width). `out` scales with
    `scale.width` and `depth` with `scale.depth`.
    """

    kind = "c3ghost"
    paper = "Han et al. GhostNet, CVPR 2020; ultralytics/nn/modules/block.py C3Ghost, GhostBottleneck"

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        self.check_widths(ctx)
        if not self.shortcut:
            raise ctx.invalid("shortcut", "a ghost bottleneck is always residual (Ultralytics' C3Ghost ignores "
                                          "shortcut): remove `shortcut: false`")
        hidden = self.hidden()
        if hidden % 4:
            raise ctx.invalid("out", f"the hidden width out // 2 = {hidden} must be a multiple of 4 (each ghost "
                                     f"module halves it), got out {self.out}")
        norm = self.norm or ctx.norm
        bias = norm == "none"
        first = conv_info(x, ctx, out=hidden, kernel=1, bias=bias, norm=norm)
        side = conv_info(x, ctx, out=hidden, kernel=1, bias=bias, norm=norm)
        half = first.shape
        inner = ghost_info(half, ctx, out=hidden // 2, norm=norm)
        block = inner.then(ghost_info(inner.shape, ctx, out=hidden, norm=norm))
        macs = None if block.macs is None else self.depth * block.macs
        total = first.then(side).then(LayerInfo(half, self.depth * block.params, macs))
        pieces = Shape(2 * hidden, half.height, half.width)
        return total.then(conv_info(pieces, ctx, out=self.out, kernel=1, bias=bias, norm=norm))

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.yolo import C3Ghost as C3GhostModule

        return C3GhostModule(x.channels, self.out, hidden=self.hidden(), depth=self.depth, norm=self.norm or ctx.norm,
                             act=self.act or ctx.act)

    def build_units(self) -> int:
        return 4 + 12 * self.depth

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, out=st.sampled_from([8, 16, 24]), depth=st.integers(1, 2),
                         norm=st.sampled_from([None, "batch", "none"]), act=st.sampled_from([None, "silu", "relu"]))
