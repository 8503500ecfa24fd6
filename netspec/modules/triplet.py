"""Triplet attention (Misra et al., WACV 2021; official code landskape-ai/triplet-attention)."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules import pooling


class ZPoolGate(nn.Module):
    """x * sigmoid(BN(conv_kxk([max_1(x), mean_1(x)]))): the official AttentionGate (conv without bias, BN
    eps 1e-5 momentum 0.01), pooling over dim 1 of whatever rotation of the tensor it is given."""

    def __init__(self, *, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=(kernel - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat((pooling.amax(x, (1,)), pooling.mean(x, (1,))), dim=1)  # official order: max, mean
        return x * torch.sigmoid(self.bn(self.conv(pooled)))


class TripletAttention(nn.Module):
    """Mean of three gates: over (C, W) with H as channels, over (H, C) with W as channels, and over (H, W).

    The official ResNet initialises the BN weight of the (H, W) branch (its ``SpatialGate``) to 0.
    """

    def __init__(self, *, kernel: int, spatial: bool) -> None:
        super().__init__()
        self.cw = ZPoolGate(kernel=kernel)
        self.hc = ZPoolGate(kernel=kernel)
        self.hw = ZPoolGate(kernel=kernel) if spatial else None
        if self.hw is not None:
            nn.init.zeros_(self.hw.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_cw = self.cw(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)  # H plays the channels
        out_hc = self.hc(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)  # W plays the channels
        if self.hw is None:
            return (out_cw + out_hc) * (1 / 2)
        return (self.hw(x) + out_cw + out_hc) * (1 / 3)
