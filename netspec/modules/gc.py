"""Global context block (Cao et al., GCNet, ICCVW 2019; official code xvjiarui/GCNet, mmcv's ContextBlock)."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules import pooling
from netspec.modules.norm import LayerNorm2d
from netspec.modules.pooling import PooledConv


def transform(channels: int, hidden: int, eps: float = 1e-5, channel_norm: bool = False) -> nn.Sequential:
    """1x1 C->P (bias), LayerNorm([P, 1, 1], eps), ReLU, 1x1 P->C (bias), the last zero-initialised (official init).

    ``channel_norm``: timm's LayerNorm2d(P) instead, the same function with (P,)-shaped weights."""
    last = PooledConv(hidden, channels, 1, bias=True)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    norm = LayerNorm2d(hidden, eps=eps) if channel_norm else nn.LayerNorm([hidden, 1, 1], eps=eps)
    return nn.Sequential(PooledConv(channels, hidden, 1, bias=True), norm,
                         nn.ReLU(inplace=True), last)


class GlobalContext(nn.Module):
    """Context = softmax-over-positions attention pooling (or the mean); out = x * sigmoid(mul(ctx)) + add(ctx).

    Children in the official order: conv_mask, channel_add_conv, channel_mul_conv (those that are used).
    """

    def __init__(self, channels: int, hidden: int, *, attention_pool: bool, add: bool, mul: bool,
                 eps: float = 1e-5, channel_norm: bool = False) -> None:
        super().__init__()
        self.conv_mask = nn.Conv2d(channels, 1, 1) if attention_pool else None
        if self.conv_mask is not None:
            nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(self.conv_mask.bias)
        self.channel_add_conv = transform(channels, hidden, eps, channel_norm) if add else None
        self.channel_mul_conv = transform(channels, hidden, eps, channel_norm) if mul else None

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Attention pooling weights (N, H*W, 1), summing to 1 over the positions."""
        assert self.conv_mask is not None
        return torch.softmax(self.conv_mask(x).flatten(1), dim=1).unsqueeze(-1)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_mask is None:
            return pooling.mean(x, (2, 3))
        return torch.bmm(x.flatten(2), self.weights(x)).unsqueeze(-1)  # (N, C, HW) @ (N, HW, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.context(x)
        out = x
        if self.channel_mul_conv is not None:
            out = out * torch.sigmoid(self.channel_mul_conv(context))
        if self.channel_add_conv is not None:
            out = out + self.channel_add_conv(context)
        return out
