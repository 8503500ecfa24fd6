"""Split attention (Zhang et al., ResNeSt, 2020; official code zhanghang1989/ResNeSt, splat.py ``SplAtConv2d``)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from netspec.modules.merge import sum_of


class SplitAttention(nn.Module):
    """Grouped 3x3 conv to radix*C + BN + ReLU, split into radix parts and summed, pooled, fc1 C->inter (bias,
    grouped by cardinality) + BN + ReLU, fc2 inter->radix*C (bias), rSoftMax over the radix (sigmoid at radix 1),
    weighted sum of the parts. Children in the official order: conv, bn0, relu, fc1, bn1, fc2; ``norm=False``:
    no BNs (identities), as timm's SplitAttn without a norm_layer."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, dilation: int, radix: int,
                 cardinality: int, hidden: int, norm: bool = True) -> None:
        super().__init__()
        self.radix = radix
        self.cardinality = cardinality
        self.conv = nn.Conv2d(in_channels, out_channels * radix, 3, stride=stride, padding=dilation,
                              dilation=dilation, groups=cardinality * radix, bias=False)
        self.bn0 = nn.BatchNorm2d(out_channels * radix) if norm else nn.Identity()
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(out_channels, hidden, 1, groups=cardinality)
        self.bn1 = nn.BatchNorm2d(hidden) if norm else nn.Identity()
        self.fc2 = nn.Conv2d(hidden, out_channels * radix, 1, groups=cardinality)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The radix parts (each (N, C, H', W')) of the conv + BN + ReLU output."""
        x = self.relu(self.bn0(self.conv(x)))
        return torch.split(x, x.shape[1] // self.radix, dim=1) if self.radix > 1 else (x,)

    def weights(self, parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Attention weights (N, radix, C): a softmax over the radix within each cardinal group (rSoftMax)."""
        gap = sum_of(parts)
        logits = self.fc2(self.relu(self.bn1(self.fc1(F.adaptive_avg_pool2d(gap, 1)))))
        batch = logits.shape[0]
        if self.radix == 1:
            return torch.sigmoid(logits).view(batch, 1, -1)
        grouped = logits.view(batch, self.cardinality, self.radix, -1).transpose(1, 2)  # (N, radix, card, C/card)
        return F.softmax(grouped, dim=1).reshape(batch, self.radix, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.split(x)
        weights = self.weights(parts)
        out = weights[:, 0, :, None, None] * parts[0]
        for index in range(1, self.radix):
            out = out + weights[:, index, :, None, None] * parts[index]
        return out
