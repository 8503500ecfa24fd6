"""``danet``: DANet's dual attention, PAM and CAM in parallel on the same input, summed."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Attention, Context, Layer, PositiveInt
from netspec.layers.cam import cam_macs
from netspec.layers.pam import DANET_PAPER, check_pam, pam_hidden, pam_macs, pam_params
from netspec.registry import register
from netspec.shapes import Shape, add_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class DANet(Attention):
    """Dual attention: PAM(x) + CAM(x), both on the same input (`reduction` is PAM's query/key reduction).

    The official DANetHead wraps each branch in its own 3x3 conv+BN+ReLU before (conv5a/conv5c, C -> C/4) and
    after (conv51/conv52) and sums the branches; write those as `conv` layers around `danet` (a shared conv
    before, one after; see specs/danet_resnet50.yaml). Each module keeps its own residual, so the sum is 2x
    at initialisation.
    """

    kind = "danet"
    paper = DANET_PAPER

    reduction: PositiveInt = 8
    """PAM's query/key channels are C // reduction (official: 8); needs C >= reduction"""

    def check(self, x: Shape, ctx: Context) -> None:
        check_pam(self.reduction, x, ctx)

    def count(self, channels: int, ctx: Context) -> int:
        return pam_params(channels, self.reduction) + 1

    def macs_per_sample(self, x: Shape) -> int | None:
        return add_macs(pam_macs(x, self.reduction), cam_macs(x))

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.danet import DualAttention

        return DualAttention(x.channels, pam_hidden(x.channels, self.reduction))

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, reduction=st.integers(1, x.channels))
