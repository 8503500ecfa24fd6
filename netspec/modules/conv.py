"""Conv -> norm -> activation, the unit every conv-like kind builds."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from netspec.ops import make_act, make_norm


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: (before, after), the odd pixel after (timm's ``pad_same``)."""
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """A ``Conv2d`` with TensorFlow's SAME padding computed from each input's size (timm's ``Conv2dSame``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_pads(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = same_pads(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


def make_conv(in_channels: int, out_channels: int, kernel: int, *, stride: int, padding: int | str, dilation: int,
              groups: int, bias: bool) -> nn.Conv2d:
    """``nn.Conv2d``; with ``padding="same"``, static symmetric padding where TensorFlow's SAME is symmetric for
    every size (stride 1, even (kernel - 1) * dilation), else :class:`Conv2dSame` (as timm's ``create_conv2d``)."""
    if padding == "same":
        if stride == 1 and (dilation * (kernel - 1)) % 2 == 0:
            padding = (kernel - 1) // 2 * dilation
        else:
            return Conv2dSame(in_channels, out_channels, kernel, stride=stride, padding=0, dilation=dilation,
                              groups=groups, bias=bias)
    return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, bias=bias)


class ConvNormAct(nn.Sequential):
    """``conv``, then ``norm`` and ``act`` children when they are not ``"none"``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel: int,
        stride: int = 1,
        padding: int | str = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool,
        norm: str,
        act: str,
    ) -> None:
        super().__init__()
        self.conv = make_conv(in_channels, out_channels, kernel, stride=stride, padding=padding, dilation=dilation,
                              groups=groups, bias=bias)
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
