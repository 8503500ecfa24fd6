"""``ecam``: ECA with an MLP across channels (timm's ``EcaModule(use_mlp=True)``, ``attn_layer='ecam'``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.layers._timm_rules import timm_divisible, timm_eca_kernel
from netspec.layers.base import Attention, Context, Layer, OddInt, PositiveInt
from netspec.layers.se import Gate, InnerAct
from netspec.registry import register
from netspec.shapes import Shape, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn


@register
class ECAM(Attention):
    """ECA-MLP: pooled channels as a sequence, Conv1d 1->rd (k=1, bias) + ReLU, Conv1d rd->1 (k taps, bias), gate.

    rd = make_divisible(C / `reduction`, `divisor`) (timm: C/8 rounded to 8); k defaults to timm's adaptive size
    (as ECA's, at least 3). A timm experiment, not in the ECA paper. Params 2 rd + rd k + 1.
    """

    kind = "ecam"
    paper = ("Wang, Wu, Zhu, Li, Zuo, Hu. ECA-Net: Efficient Channel Attention. CVPR 2020 (arXiv:1910.03151); "
             "MLP variant from timm")

    kernel: OddInt | None = None
    """odd taps of the second conv across channels; default timm's adaptive k (at least 3)"""
    reduction: PositiveInt = 8
    """rd = make_divisible(C / reduction, divisor) hidden sequences"""
    divisor: PositiveInt = 8
    """rd rounds to a multiple of it (timm's make_divisible)"""
    act: InnerAct = "relu"
    """the activation between the convs"""
    gate: Gate = "sigmoid"
    """the gate"""

    def kernel_for(self, channels: int) -> int:
        return timm_eca_kernel(channels) if self.kernel is None else self.kernel

    def hidden(self, channels: int) -> int:
        return timm_divisible(channels / self.reduction, self.divisor)

    def count(self, channels: int, ctx: Context) -> int:
        hidden = self.hidden(channels)
        return 2 * hidden + hidden * self.kernel_for(channels) + 1

    def macs_per_sample(self, x: Shape) -> int | None:
        gating = scale_macs(x.channels, x)
        hidden = self.hidden(x.channels)
        return None if gating is None else hidden * x.channels * (1 + self.kernel_for(x.channels)) + gating

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.timm_attention import EcaMlp

        return EcaMlp(self.hidden(x.channels), kernel=self.kernel_for(x.channels), act=self.act, gate=self.gate)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(cls, kernel=st.one_of(st.none(), st.integers(0, 3).map(lambda n: 2 * n + 1)),
                         reduction=st.integers(1, 16), divisor=st.sampled_from([1, 4, 8]),
                         act=st.sampled_from(["relu", "silu"]), gate=st.sampled_from(["sigmoid", "hardsigmoid"]))
