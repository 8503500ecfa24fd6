"""ResNet blocks (He et al., CVPR 2016): body convs, optional attention before the addition, shortcut, act."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules.stochastic_depth import StochasticDepth


class ResidualBlock(nn.Module):
    """act(attention(body(x)) + shortcut(x)); without a shortcut (a plain block) act(attention(body(x))).

    ``drop_path`` > 0 drops the residual branch of whole samples in training before the addition, as timm's ResNet.
    """

    def __init__(self, body: nn.Sequential, attention: nn.Module | None, shortcut: nn.Module | None, act: nn.Module,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.body = body
        self.attention = attention if attention is not None else nn.Identity()
        self.shortcut = shortcut
        self.act = act
        self.drop_path = StochasticDepth(drop_path) if drop_path > 0 and shortcut is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.attention(self.body(x))
        if self.drop_path is not None:
            out = self.drop_path(out)
        if self.shortcut is not None:
            # in place, as torchvision's and timm's blocks (``out += identity``): the body's last op (a norm, a
            # conv, a gate's multiply) does not keep its output for backward, and a new tensor for the sum
            # would be one more feature map alive at the peak of a training step
            out += self.shortcut(x)
        return self.act(out)
