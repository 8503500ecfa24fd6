"""``ese``: effective Squeeze-Excitation (VoVNetV2), one C->C FC and a hard sigmoid gate."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Attention, Context, Layer
from netspec.registry import register
from netspec.shapes import Shape, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class ESE(Attention):
    """Effective SE: global average pool, one 1x1 conv C->C with bias, hard sigmoid relu6(x + 3) / 6, channel gate.

    C^2 + C params; no reduction, so no channel information is lost (the official eSEModule).
    """

    kind = "ese"
    paper = "Lee, Park. CenterMask: Real-Time Anchor-Free Instance Segmentation. CVPR 2020 (arXiv:1911.06667)"

    def count(self, channels: int, ctx: Context) -> int:
        return channels * channels + channels

    def macs_per_sample(self, x: Shape) -> int | None:
        gating = scale_macs(x.channels, x)
        return None if gating is None else x.channels * x.channels + gating

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.ese import EffectiveSE

        return EffectiveSE(x.channels)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.just(cls())
