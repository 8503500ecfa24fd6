"""Ultralytics YOLOv8 blocks (ultralytics/nn/modules/block.py): C2f and SPPF, in Ultralytics' registration order.

Each conv is a :class:`~netspec.modules.conv.ConvNormAct` (``conv``, ``norm``, ``act``), in the order of
Ultralytics' ``Conv`` (``conv``, ``bn``, ``act``), so Ultralytics' weights copy over by state-dict order.
"""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules.conv import ConvNormAct


class Bottleneck(nn.Module):
    """Two 3x3 convs, ``cv1`` then ``cv2``; ``x +`` their output when ``shortcut`` (Ultralytics ``Bottleneck``, e=1)."""

    def __init__(self, channels: int, *, shortcut: bool, norm: str, act: str) -> None:
        super().__init__()
        self.cv1 = ConvNormAct(channels, channels, kernel=3, padding=1, bias=norm == "none", norm=norm, act=act)
        self.cv2 = ConvNormAct(channels, channels, kernel=3, padding=1, bias=norm == "none", norm=norm, act=act)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.shortcut else y


class C2f(nn.Module):
    """``cv1`` (1x1 to 2h), split in two halves, ``m`` (bottlenecks chained on the last piece), concat, ``cv2`` (1x1)."""

    def __init__(self, in_channels: int, out_channels: int, *, hidden: int, depth: int, shortcut: bool,
                 norm: str, act: str) -> None:
        super().__init__()
        bias = norm == "none"
        self.cv1 = ConvNormAct(in_channels, 2 * hidden, kernel=1, bias=bias, norm=norm, act=act)
        self.cv2 = ConvNormAct((2 + depth) * hidden, out_channels, kernel=1, bias=bias, norm=norm, act=act)
        self.m = nn.ModuleList(Bottleneck(hidden, shortcut=shortcut, norm=norm, act=act) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = list(self.cv1(x).chunk(2, 1))
        for bottleneck in self.m:
            pieces.append(bottleneck(pieces[-1]))
        return self.cv2(torch.cat(pieces, 1))


class SPPF(nn.Module):
    """``cv1`` (1x1 to h), three chained ``m`` max-pools (stride 1, same size), concat of the 4 maps, ``cv2`` (1x1)."""

    def __init__(self, in_channels: int, out_channels: int, *, hidden: int, kernel: int, norm: str, act: str) -> None:
        super().__init__()
        bias = norm == "none"
        self.cv1 = ConvNormAct(in_channels, hidden, kernel=1, bias=bias, norm=norm, act=act)
        self.cv2 = ConvNormAct(4 * hidden, out_channels, kernel=1, bias=bias, norm=norm, act=act)
        self.m = nn.MaxPool2d(kernel_size=kernel, stride=1, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = [self.cv1(x)]
        for _ in range(3):
            pieces.append(self.m(pieces[-1]))
        return self.cv2(torch.cat(pieces, 1))
