"""``pam``: DANet's position attention module (every position attends to all positions)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers.base import Attention, Context, Layer, PositiveInt
from netspec.registry import register
from netspec.shapes import Shape

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

DANET_PAPER = "Fu, Liu, Tian, Li, Bao, Fang, Lu. Dual Attention Network for Scene Segmentation. CVPR 2019 (arXiv:1809.02983)"


def pam_hidden(channels: int, reduction: int) -> int:
    """Query/key channels: C // reduction, as the official ``in_dim // 8``."""
    return channels // reduction


def check_pam(reduction: int, x: Shape, ctx: Context) -> None:
    if reduction > x.channels:
        ctx.error(
            "reduction",
            f"needs at least {reduction} input channels for {x.channels}/{reduction} query/key channels, "
            f"the input has {x.channels}: lower `reduction` to <= {x.channels}",
        )


def pam_params(channels: int, reduction: int) -> int:
    """q, k: 1x1 C -> C/r with bias; v: 1x1 C -> C with bias; gamma. At r=8: 1.25C^2 + 1.25C + 1."""
    hidden = pam_hidden(channels, reduction)
    return 2 * (channels * hidden + hidden) + channels * channels + channels + 1


def pam_macs(x: Shape, reduction: int) -> int | None:
    """Projections (2·C·C/r + C² per position), the attention (HW·HW·(C/r + C)) and the gamma scaling."""
    pixels = x.pixels
    if pixels is None:
        return None
    channels, hidden = x.channels, pam_hidden(x.channels, reduction)
    return pixels * (2 * channels * hidden + channels * channels) + pixels * pixels * (hidden + channels) + pixels * channels


@register
class PAM(Attention):
    """Position attention: x + gamma * V·softmax(QᵀK)ᵀ, Q, K 1x1 C->C/`reduction`, V 1x1 C->C (gamma starts at 0).

    As the official ``PAM_Module``: biases on the three convs, softmax over the keys without scaling. Needs at
    least `reduction` channels. Runs through memory-efficient attention (the HWxHW matrix is never whole).
    """

    kind = "pam"
    paper = DANET_PAPER

    reduction: PositiveInt = 8
    """query/key channels are C // reduction (official: 8); needs C >= reduction"""

    def check(self, x: Shape, ctx: Context) -> None:
        check_pam(self.reduction, x, ctx)

    def count(self, channels: int, ctx: Context) -> int:
        return pam_params(channels, self.reduction)

    def macs_per_sample(self, x: Shape) -> int | None:
        return pam_macs(x, self.reduction)

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.pam import PositionAttention

        return PositionAttention(x.channels, pam_hidden(x.channels, self.reduction))

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, reduction=st.integers(1, x.channels))
