"""Bottleneck attention module (Park, Woo, Lee, Kweon, BMVC 2018; official code Jongchan/attention-module)."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules import pooling


class ChannelGate(nn.Module):
    """Global average pool, Linear C->r + BatchNorm1d + ReLU, Linear r->C (official ``gate_c``)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = pooling.mean(x, (2, 3), keepdim=False)  # global (the official window is H x H: wrong for H != W)
        return self.fc2(self.act(self.bn(self.fc1(pooled)))).view(x.shape[0], -1, 1, 1)


class SpatialGate(nn.Module):
    """1x1 C->r + BN + ReLU, `convs` x (3x3 dilation D r->r + BN + ReLU), 1x1 r->1 (official ``gate_s``)."""

    def __init__(self, channels: int, hidden: int, *, convs: int, dilation: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU()]
        for _ in range(convs):
            layers += [nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation), nn.BatchNorm2d(hidden),
                       nn.ReLU()]
        layers.append(nn.Conv2d(hidden, 1, 1))
        self.gate = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(x)


class BottleneckAttention(nn.Module):
    """x * (1 + sigmoid(Mc * Ms)) as the released code (``product``), or x * (1 + sigmoid(Mc + Ms)) as the paper."""

    def __init__(self, channels: int, hidden: int, *, convs: int, dilation: int, product: bool) -> None:
        super().__init__()
        self.channel_att = ChannelGate(channels, hidden)
        self.spatial_att = SpatialGate(channels, hidden, convs=convs, dilation=dilation)
        self.product = product

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel, spatial = self.channel_att(x), self.spatial_att(x)
        logits = channel * spatial if self.product else channel + spatial  # (N, C, H, W)
        return x * (1 + torch.sigmoid(logits))
