"""Reference builds for the attention-gate tests, in plain torch, following the official code exactly (module
registration order, defaults, op order), so that tests copy their random weights into netspec's models by
state-dict order and compare outputs. Sources (read, not imported):

- conv_block, up_conv, Attention_block, U_Net, AttU_Net: LeeJunHyun/Image_Segmentation network.py
- InvertedResidual with CoordAtt: houqb/CoordAttention mbv2_ca.py (its CoordAtt is tests/official_attention.py's)
"""
from __future__ import annotations

import torch
from torch import nn

from official_attention import CoordAtt


class conv_block(nn.Module):
    def __init__(self, ch_in, ch_out):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(ch_in, ch_out, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch_out, ch_out, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.conv(x)


class up_conv(nn.Module):
    def __init__(self, ch_in, ch_out):
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(ch_in, ch_out, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.up(x)


class Attention_block(nn.Module):
    def __init__(self, F_g, F_l, F_int):
        super().__init__()
        self.W_g = nn.Sequential(
            nn.Conv2d(F_g, F_int, kernel_size=1, stride=1, padding=0, bias=True),
            nn.BatchNorm2d(F_int),
        )
        self.W_x = nn.Sequential(
            nn.Conv2d(F_l, F_int, kernel_size=1, stride=1, padding=0, bias=True),
            nn.BatchNorm2d(F_int),
        )
        self.psi = nn.Sequential(
            nn.Conv2d(F_int, 1, kernel_size=1, stride=1, padding=0, bias=True),
            nn.BatchNorm2d(1),
            nn.Sigmoid(),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, g, x):
        g1 = self.W_g(g)
        x1 = self.W_x(x)
        psi = self.relu(g1 + x1)
        psi = self.psi(psi)
        return x * psi


class U_Net(nn.Module):
    """``U_Net(img_ch, output_ch)``; with ``gates=True`` it is ``AttU_Net``: the same modules with Att5..Att2
    registered between Up_k and Up_conv_k, as the official class does."""

    def __init__(self, img_ch=3, output_ch=1, gates=False):
        super().__init__()
        self.gates = gates
        self.Maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.Conv1 = conv_block(ch_in=img_ch, ch_out=64)
        self.Conv2 = conv_block(ch_in=64, ch_out=128)
        self.Conv3 = conv_block(ch_in=128, ch_out=256)
        self.Conv4 = conv_block(ch_in=256, ch_out=512)
        self.Conv5 = conv_block(ch_in=512, ch_out=1024)
        for level, channels in ((5, 512), (4, 256), (3, 128), (2, 64)):
            self.add_module(f"Up{level}", up_conv(ch_in=2 * channels, ch_out=channels))
            if gates:
                self.add_module(f"Att{level}", Attention_block(F_g=channels, F_l=channels, F_int=channels // 2))
            self.add_module(f"Up_conv{level}", conv_block(ch_in=2 * channels, ch_out=channels))
        self.Conv_1x1 = nn.Conv2d(64, output_ch, kernel_size=1, stride=1, padding=0)

    def forward(self, x):
        x1 = self.Conv1(x)
        x2 = self.Conv2(self.Maxpool(x1))
        x3 = self.Conv3(self.Maxpool(x2))
        x4 = self.Conv4(self.Maxpool(x3))
        d = self.Conv5(self.Maxpool(x4))
        for level, skip in ((5, x4), (4, x3), (3, x2), (2, x1)):
            d = getattr(self, f"Up{level}")(d)
            if self.gates:
                skip = getattr(self, f"Att{level}")(g=d, x=skip)
            d = getattr(self, f"Up_conv{level}")(torch.cat((skip, d), dim=1))
        return self.Conv_1x1(d)


def AttU_Net(img_ch=3, output_ch=1):
    return U_Net(img_ch, output_ch, gates=True)


class InvertedResidualCA(nn.Module):
    """mbv2_ca.py's ``InvertedResidual(inp, oup, stride, expand_ratio)``: a CoordAtt after the depthwise conv when
    the block expands."""

    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden_dim = round(inp * expand_ratio)
        self.identity = stride == 1 and inp == oup
        if expand_ratio == 1:
            self.conv = nn.Sequential(
                nn.Conv2d(hidden_dim, hidden_dim, 3, stride, 1, groups=hidden_dim, bias=False),
                nn.BatchNorm2d(hidden_dim),
                nn.ReLU6(inplace=True),
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            )
        else:
            self.conv = nn.Sequential(
                nn.Conv2d(inp, hidden_dim, 1, 1, 0, bias=False),
                nn.BatchNorm2d(hidden_dim),
                nn.ReLU6(inplace=True),
                nn.Conv2d(hidden_dim, hidden_dim, 3, stride, 1, groups=hidden_dim, bias=False),
                nn.BatchNorm2d(hidden_dim),
                nn.ReLU6(inplace=True),
                CoordAtt(hidden_dim, hidden_dim),
                nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            )

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.identity else y
