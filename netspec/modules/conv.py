"""Conv -> norm -> activation, the unit every conv-like kind builds."""
from __future__ import annotations

from torch import nn

from netspec.ops import make_act, make_norm


class ConvNormAct(nn.Sequential):
    """``conv``, then ``norm`` and ``act`` children when they are not ``"none"``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool,
        norm: str,
        act: str,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel, stride=stride, padding=padding,
            dilation=dilation, groups=groups, bias=bias,
        )
        if norm != "none":
            self.norm = make_norm(norm, out_channels)
        if act != "none":
            self.act = make_act(act)


class LinearAct(nn.Sequential):
    """``linear`` then ``act``: a fully connected layer with its activation (MobileNetV3's Linear + Hardswish)."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool, act: str) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.act = make_act(act)
