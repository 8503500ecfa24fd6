"""``cam``: DANet's channel attention module (every channel attends to all channels)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Attention, Context, Layer
from netspec.layers.pam import DANET_PAPER
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


def cam_macs(x: Shape) -> int | None:
    """E = X·Xᵀ and attention·X (C·C·HW each), and the gamma scaling: of the C x C matrix when C <= HW (the
    module folds gamma into it on the CPU), else of the C x HW product."""
    pixels = x.pixels
    return None if pixels is None else 2 * x.channels * x.channels * pixels + x.channels * min(x.channels, pixels)


@register
class CAM(Attention):
    """Channel attention: x + gamma * softmax(rowmax(E) - E)·X with E = X·Xᵀ over channels (gamma starts at 0).

    Exactly the official ``CAM_Module`` (one parameter, gamma); no params to set.
    """

    kind = "cam"
    paper = DANET_PAPER

    def count(self, channels: int, ctx: Context) -> int:
        return 1

    def macs_per_sample(self, x: Shape) -> int | None:
        return cam_macs(x)

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.cam import ChannelAttention

        return ChannelAttention()

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.just(cls())
