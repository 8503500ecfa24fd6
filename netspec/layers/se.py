"""``se``: Squeeze-and-Excitation channel attention."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, Strict

from netspec.layers.base import Attention, Context, Flag, Layer, PositiveInt, check_reduction
from netspec.registry import register
from netspec.scaling import make_divisible_nearest
from netspec.shapes import LayerInfo, Shape, scale_macs

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from torch import nn

Gate = Literal["sigmoid", "hardsigmoid"]
"""The gate's squashing function: sigmoid (SENet, EfficientNet, timm) or hard sigmoid (MobileNetV3)."""
InnerAct = Literal["relu", "silu"]
"""The activation between the two FCs: ReLU (SENet, MobileNetV3) or SiLU (EfficientNet)."""
Divisor = Annotated[int, Strict(), Field(ge=1, le=1024)]


@register
class SE(Attention):
    """Squeeze-and-Excitation: global pool, FC C->C/r + ReLU, FC C/r->C + sigmoid, channel gate.

    The variants MobileNetV3 and EfficientNet use (torchvision's ``SqueezeExcitation``) are params: MobileNetV3 is
    `{reduction: 4, divisor: 8, gate: hardsigmoid}` (hidden make_divisible(C/4, 8)), EfficientNet is
    `{reduction: 4, base: block_input, act: silu}` (hidden max(1, in/4) from the block's input channels).
    """

    kind = "se"
    paper = "Hu, Shen, Sun. Squeeze-and-Excitation Networks. CVPR 2018 (arXiv:1709.01507)"

    reduction: PositiveInt = 16
    """hidden width = base channels // reduction (at least 1)"""
    base: Literal["channels", "block_input"] = "channels"
    """what `reduction` divides: the attended channels, or the input channels of the stage block the SE sits in
    (EfficientNet's MBConv; standing alone in `layers`, the attended channels)"""
    divisor: Divisor | None = None
    """round the hidden width to the nearest multiple (torchvision's _make_divisible; MobileNetV3: 8); none: floor"""
    gate: Gate = "sigmoid"
    """the gate: sigmoid, or hardsigmoid (MobileNetV3)"""
    act: InnerAct = "relu"
    """the activation between the FCs: relu, or silu (EfficientNet)"""
    bias: Flag = True
    """biases in both FCs (official SENet, torchvision); false: the bias-free SE of some ports"""
    rounding: Literal["torchvision", "timm"] = "torchvision"
    """with `divisor`: torchvision's _make_divisible of C // r (one more multiple when rounding lost over 10%), or
    timm's SEModule rule, make_divisible(C / r, divisor, round_limit=0) (nearest multiple, at least `divisor`)"""

    def base_channels(self, channels: int, ctx: Context | None = None) -> int:
        if self.base == "block_input" and ctx is not None and ctx.block_input is not None:
            return ctx.block_input
        return channels

    def hidden(self, channels: int, ctx: Context | None = None) -> int:
        if self.divisor is not None and self.rounding == "timm":
            from netspec.layers._timm_rules import timm_divisible

            return timm_divisible(self.base_channels(channels, ctx) / self.reduction, self.divisor, round_limit=0.0)
        squeezed = self.base_channels(channels, ctx) // self.reduction
        return max(squeezed, 1) if self.divisor is None else make_divisible_nearest(squeezed, self.divisor)

    def check(self, x: Shape, ctx: Context) -> None:
        check_reduction(self.reduction, x, ctx)  # base block_input: max(1, in // r) as EfficientNet, any r fits

    def count(self, channels: int, ctx: Context) -> int:
        hidden = self.hidden(channels, ctx)
        return 2 * channels * hidden + ((hidden + channels) if self.bias else 0)

    def gate_macs(self, x: Shape, hidden: int) -> int | None:
        gating = scale_macs(x.channels, x)
        return None if gating is None else 2 * x.channels * hidden + gating

    def macs_per_sample(self, x: Shape) -> int | None:
        return self.gate_macs(x, self.hidden(x.channels))

    def infer(self, x: Shape, ctx: Context) -> LayerInfo:
        info = super().infer(x, ctx)
        return LayerInfo(info.shape, info.params, self.gate_macs(x, self.hidden(x.channels, ctx)))

    def build(self, x: Shape, ctx: Context) -> "nn.Module":
        from netspec.modules.se import SqueezeExcite

        return SqueezeExcite(x.channels, self.hidden(x.channels, ctx), act=self.act, gate=self.gate, bias=self.bias)

    @classmethod
    def strategy(cls, x: Shape) -> "SearchStrategy[Layer]":
        from hypothesis import strategies as st

        return st.builds(
            cls,
            reduction=st.integers(1, x.channels),
            base=st.sampled_from(["channels", "block_input"]),
            divisor=st.sampled_from([None, None, 1, 8]),
            gate=st.sampled_from(["sigmoid", "hardsigmoid"]),
            act=st.sampled_from(["relu", "silu"]),
            bias=st.booleans(),
            rounding=st.sampled_from(["torchvision", "timm"]),
        )
