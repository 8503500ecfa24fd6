"""``c3k2``: YOLO11's C2f with C3k or bottleneck inner blocks (Ultralytics ``C3k2``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, Strict

from netspec.layers.base import Context, Flag, Layer
from netspec.layers.c2f import c2f_info
from netspec.layers.c3 import csp3_info
from netspec.layers.conv import conv_info
from netspec.layers.stage import MAX_BLOCKS
from netspec.ops import ActName, NormName
from netspec.registry import register
from netspec.scaling import ULTRALYTICS_C3K_SCALES, Channels, Depth, Scale
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

Expansion = Annotated[float, Strict(), Field(gt=0, le=4, allow_inf_nan=False)]


@register
class C3k2(Layer):
    """YOLO11 C3k2: a C2f (1x1 conv to 2h, h = int(out·e), split, `depth` blocks on the last piece, concat, 1x1
    conv) whose blocks are C3k (a C3 of two 3x3 bottlenecks at width h/2) when `c3k`, else bottlenecks of two 3x3
    convs through h/2.

    Scaled at Ultralytics' scale m, l or x (a `scales:` row of that name), every c3k2 uses C3k blocks, as
    Ultralytics' parse_model does; the summary says so. `out` scales with `scale.width`, `depth` with `scale.depth`.
    """

    kind = "c3k2"
    paper = "Jocher, Qiu. Ultralytics YOLO11 (2024), ultralytics/nn/modules/block.py C3k2"

    out: Channels
    """output channels"""
    depth: Depth = 1
    """number of inner blocks"""
    c3k: Flag = False
    """C3k inner blocks (else plain bottlenecks); forced true at Ultralytics' scales m, l and x"""
    shortcut: Flag = True
    """residual addition in each bottleneck"""
    e: Expansion = 0.5
    """hidden width as a fraction of `out`: h = int(out * e)"""
    norm: NormName | None = None
    act: ActName | None = None

    def hidden(self) -> int:
        return int(self.out * self.e)

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        hidden = self.hidden()
        if self.depth > MAX_BLOCKS:
            raise ctx.invalid("depth", f"at most {MAX_BLOCKS} blocks, got {self.depth}")
        if hidden < 2:
            raise ctx.invalid("e", f"the hidden width int(out * e) = {hidden} must be at least 2 (its blocks work at "
                                   "half of it)")
        norm = self.norm or ctx.norm
        bias = norm == "none"

        def block(half: Shape) -> LayerInfo:
            if self.c3k:
                return csp3_info(half, ctx, out=hidden, hidden=hidden // 2, depth=2, kernels=(3, 3), norm=norm)
            inner = conv_info(half, ctx, out=hidden // 2, kernel=3, padding=1, bias=bias, norm=norm)
            return inner.then(conv_info(inner.shape, ctx, out=hidden, kernel=3, padding=1, bias=bias, norm=norm))

        return c2f_info(x, ctx, out=self.out, hidden=hidden, depth=self.depth, norm=norm, block=block)

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.yolo import C2f, c3k2_blocks

        norm, act = self.norm or ctx.norm, self.act or ctx.act
        blocks = c3k2_blocks(self.hidden(), depth=self.depth, c3k=self.c3k, shortcut=self.shortcut, norm=norm, act=act)
        return C2f(x.channels, self.out, hidden=self.hidden(), depth=self.depth, shortcut=self.shortcut, norm=norm,
                   act=act, blocks=blocks)

    def build_units(self) -> int:
        return 3 + (9 if self.c3k else 3) * self.depth

    def rescaled(self, scale: Scale) -> "Layer":
        return self.model_copy(update={"c3k": True}) if scale.name in ULTRALYTICS_C3K_SCALES else self

    @classmethod
    def scale_note(cls, scale: Scale) -> str | None:
        if scale.name in ULTRALYTICS_C3K_SCALES:
            return f"c3k2: c3k true at scale {scale.name} (Ultralytics uses C3k blocks at scales m, l and x)"
        return None

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, out=st.integers(8, 16), depth=st.integers(1, 2), c3k=st.booleans(),
                         shortcut=st.booleans(), e=st.sampled_from([0.25, 0.5, 1.0]),
                         norm=st.sampled_from([None, "batch", "none"]), act=st.sampled_from([None, "silu", "relu"]))
