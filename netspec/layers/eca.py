"""``eca``: Efficient Channel Attention, a k-tap 1-D conv across pooled channels instead of SE's MLP."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from netspec.layers.base import Attention, Context, Flag, Layer, OddInt
from netspec.layers.se import Gate
from netspec.registry import register
from netspec.shapes import Shape, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


def adaptive_kernel(channels: int, *, gamma: int = 2, b: int = 1) -> int:
    """ECA's k = psi(C): t = int(|(log2 C + b) / gamma|), then t if t is odd else t + 1."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


@register
class ECA(Attention):
    """Efficient Channel Attention: global pool, 1-D conv of `kernel` taps across channels (no bias), sigmoid gate.

    `kernel` defaults to the paper's adaptive size for C channels (gamma=2, b=1; C=256 gives 5); set an odd
    integer to fix it, as the released ECA-ResNet-50 does (3, 5, 5, 7 per stage). `circular: true` pads the
    channel sequence circularly instead of with zeros (timm's `ceca`, CecaModule): same params, same MACs.
    """

    kind = "eca"
    paper = "Wang, Wu, Zhu, Li, Zuo, Hu. ECA-Net: Efficient Channel Attention. CVPR 2020 (arXiv:1910.03151)"

    kernel: OddInt | None = None
    """odd number of taps across channels; default: the paper's adaptive t = int((log2 C + 1) / 2), +1 if even"""
    circular: Flag = False
    """pad the channels circularly (timm's ceca) instead of with zeros (official ECA)"""
    gate: Gate = "sigmoid"
    """the gate: sigmoid (paper), or hardsigmoid (timm's EcaModule gate_layer)"""
    min_kernel: OddInt = 1
    """the adaptive kernel's least size (timm's EcaModule/CecaModule: 3; the paper: 1, so C < 8 gets 1 tap)"""

    def kernel_for(self, channels: int) -> int:
        return max(adaptive_kernel(channels), self.min_kernel) if self.kernel is None else self.kernel

    def check(self, x: Shape, ctx: Context) -> None:
        pad = (self.kernel_for(x.channels) - 1) // 2
        if self.circular and pad > x.channels:
            ctx.error("kernel", f"circular padding of {pad} wraps around the {x.channels} channels more than once: "
                                f"use at most {2 * x.channels + 1} taps")

    def count(self, channels: int, ctx: Context) -> int:
        return self.kernel_for(channels)

    def macs_per_sample(self, x: Shape) -> int | None:
        gating = scale_macs(x.channels, x)
        return None if gating is None else self.kernel_for(x.channels) * x.channels + gating

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.eca import EfficientChannelAttention

        return EfficientChannelAttention(kernel=self.kernel_for(x.channels), circular=self.circular, gate=self.gate)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        widest = min(4, x.channels)  # circular padding (k-1)/2 may not wrap around the channels twice
        return st.builds(cls, kernel=st.one_of(st.none(), st.integers(0, 4).map(lambda n: 2 * n + 1)),
                         circular=st.just(False), gate=st.sampled_from(["sigmoid", "hardsigmoid"]),
                         min_kernel=st.sampled_from([1, 3])) | st.builds(
            cls, kernel=st.one_of(st.none(), st.integers(0, widest).map(lambda n: 2 * n + 1)), circular=st.just(True))
