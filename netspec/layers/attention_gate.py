"""``attention_gate``: Attention U-Net's additive gate on a skip connection, driven by a gating signal."""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from netspec.layers.base import Context, Layer, Merge, describe_inputs
from netspec.registry import register
from netspec.scaling import Channels
from netspec.shapes import LayerInfo, Shape, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class AttentionGate(Merge):
    """Attention gate: `from: [g, x]`, the skip map x weighted by psi computed from x and the gating signal g.

    psi = sigmoid(BN(1x1 F_int->1 (ReLU(BN(1x1 W_g g) + BN(1x1 W_x x))))), all convs with bias; returns x * psi
    (x's shape). As LeeJunHyun/Image_Segmentation's ``Attention_block(F_g, F_l, F_int)`` and its ``forward(g, x)``:
    the gating signal first, the skip second. g and x must have the same H x W. F_int(F_g + F_l) + 7·F_int + 3 params.
    """

    kind = "attention_gate"
    paper = "Oktay et al. Attention U-Net: Learning Where to Look for the Pancreas. MIDL 2018 (arXiv:1804.03999)"
    arity: ClassVar[tuple[int, int | None]] = (2, 2)

    inter: Channels | None = None
    """F_int, the gate's inner channels; default: half the skip's channels (x's C // 2, at least 1), as AttU_Net"""

    def inner(self, skip: Shape) -> int:
        return self.inter if self.inter is not None else max(skip.channels // 2, 1)

    def merge(self, inputs: list[Shape], ctx: Context) -> LayerInfo:
        g, x = inputs
        if g.flat or (g.height, g.width) != (x.height, x.width):
            raise ctx.invalid(None, f"needs the gating signal g and the skip x as feature maps of the same size: "
                                    f"{describe_inputs(inputs, ctx)} (resize one with `upsample: {{to: ...}}`)")
        f_int = self.inner(x)
        per_pixel = f_int * (g.channels + x.channels) + f_int + x.channels  # three 1x1 convs, then x * psi
        return LayerInfo(x, f_int * (g.channels + x.channels) + 7 * f_int + 3, scale_macs(per_pixel, x))

    def build_inputs(self, inputs: list[Shape], ctx: Context) -> "nn.Module":
        from netspec.modules.attention_gate import AttentionGate as AttentionGateModule

        g, x = inputs
        return AttentionGateModule(g.channels, x.channels, self.inner(x))

    @classmethod
    def accepts(cls, x: Shape) -> bool:
        return x.spatial

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, inter=st.one_of(st.none(), st.integers(1, 8)))

    @classmethod
    def companions(cls, x: Shape) -> "SearchStrategy[list[Shape]]":
        """The skip x (after the gating signal ``x`` drawn first): any channels, the signal's size."""
        from hypothesis import strategies as st

        return st.integers(1, 8).map(lambda channels: [Shape(channels, x.height, x.width)])
