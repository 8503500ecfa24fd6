"""Gather-excite (Hu, Shen, Albanie, Sun, Vedaldi, NeurIPS 2018). The authors' code (hujie-frank/GENet) is Lua
Torch; this follows timm's ``GatherExcite`` (timm/layers/gather_excite.py), the PyTorch reference."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from netspec.modules import pooling


class GatherExcite(nn.Module):
    """Gather (global mean, an avg pool of extent E, or log2(E) depthwise 3x3 stride-2 convs + BN), MLP
    C->rd->C (1x1 convs with bias, ReLU), nearest upsampling back to H x W, x * sigmoid(...)."""

    def __init__(self, channels: int, hidden: int | None, *, extent: int, extra_params: bool) -> None:
        super().__init__()
        self.extent = extent
        self.gather: nn.Sequential | None = None
        if extra_params:
            self.gather = nn.Sequential()
            steps = int(math.log2(extent))
            for index in range(steps):
                self.gather.add_module(f"conv{index + 1}", nn.Conv2d(channels, channels, 3, stride=2, padding=1,
                                                                     groups=channels, bias=False))
                self.gather.add_module(f"norm{index + 1}", nn.BatchNorm2d(channels))
                if index != steps - 1:
                    self.gather.add_module(f"act{index + 1}", nn.ReLU(inplace=True))
        self.mlp: nn.Module = nn.Identity()
        if hidden is not None:  # timm's ConvMlp: fc1, norm (identity), act, drop (identity), fc2
            self.mlp = nn.Sequential()
            self.mlp.add_module("fc1", nn.Conv2d(channels, hidden, 1))
            self.mlp.add_module("act", nn.ReLU(inplace=True))
            self.mlp.add_module("fc2", nn.Conv2d(hidden, channels, 1))

    def gathered(self, x: torch.Tensor) -> torch.Tensor:
        if self.gather is not None:
            return self.gather(x)
        if self.extent == 0:
            return pooling.mean(x, (2, 3))
        kernel = 2 * self.extent - 1
        return F.avg_pool2d(x, kernel, stride=self.extent, padding=kernel // 2, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        excite = self.mlp(self.gathered(x))
        if excite.shape[-1] != 1 or excite.shape[-2] != 1:
            excite = F.interpolate(excite, size=x.shape[-2:])
        return x * torch.sigmoid(excite)
