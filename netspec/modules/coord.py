"""Coordinate attention (Hou, Zhou, Feng, CVPR 2021; official code houqb/CoordAttention, coordatt.py)."""
from __future__ import annotations

import torch
from torch import nn


class CoordinateAttention(nn.Module):
    """Pool over W and over H, concat, 1x1 C->mip + BN + h-swish, split, 1x1 mip->C + sigmoid each; x * a_w * a_h.

    Children in the official order (conv1, bn1, act, conv_h, conv_w), so weights copy by order.
    """

    def __init__(self, channels: int, hidden: int, *, bias: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, 1, bias=bias)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.act = nn.Hardswish()  # the official h_swish: x * relu6(x + 3) / 6
        self.conv_h = nn.Conv2d(hidden, channels, 1, bias=bias)
        self.conv_w = nn.Conv2d(hidden, channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2], x.shape[3]
        pooled_h = x.mean(3, keepdim=True)  # (N, C, H, 1)
        pooled_w = x.mean(2, keepdim=True).transpose(2, 3)  # (N, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat((pooled_h, pooled_w), dim=2))))
        y_h, y_w = torch.split(y, [height, width], dim=2)
        a_h = self.conv_h(y_h).sigmoid()
        a_w = self.conv_w(y_w.transpose(2, 3)).sigmoid()
        return x * a_w * a_h
