"""Ultralytics YOLO blocks (ultralytics/nn/modules/block.py, conv.py): C2f, C2, SPPF, C3, C3k, C3k2, PSABlock, C2PSA,
GhostConv, GhostBottleneck and C3Ghost, in Ultralytics' registration order.

Each conv is a :class:`~netspec.modules.conv.ConvNormAct` (``conv``, ``norm``, ``act``), in the order of
Ultralytics' ``Conv`` (``conv``, ``bn``, ``act``), so Ultralytics' weights copy over by state-dict order.
"""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules.conv import ConvNormAct


class Bottleneck(nn.Module):
    """Two convs, ``cv1`` (to ``hidden``, kernel ``kernels[0]``) then ``cv2`` (back, ``kernels[1]``); ``x +`` their
    output when ``shortcut`` (Ultralytics ``Bottleneck``; C2f's has e=1, two 3x3; C3's a 1x1 then a 3x3)."""

    def __init__(self, channels: int, *, shortcut: bool, norm: str, act: str, hidden: int | None = None,
                 kernels: tuple[int, int] = (3, 3)) -> None:
        super().__init__()
        hidden = channels if hidden is None else hidden
        first, second = kernels
        self.cv1 = ConvNormAct(channels, hidden, kernel=first, padding=first // 2, bias=norm == "none", norm=norm, act=act)
        self.cv2 = ConvNormAct(hidden, channels, kernel=second, padding=second // 2, bias=norm == "none", norm=norm,
                               act=act)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.shortcut else y


class C2f(nn.Module):
    """``cv1`` (1x1 to 2h), split in two halves, ``m`` (bottlenecks chained on the last piece), concat, ``cv2`` (1x1)."""

    def __init__(self, in_channels: int, out_channels: int, *, hidden: int, depth: int, shortcut: bool,
                 norm: str, act: str, blocks: "list[nn.Module] | None" = None) -> None:
        super().__init__()
        bias = norm == "none"
        self.cv1 = ConvNormAct(in_channels, 2 * hidden, kernel=1, bias=bias, norm=norm, act=act)
        self.cv2 = ConvNormAct((2 + depth) * hidden, out_channels, kernel=1, bias=bias, norm=norm, act=act)
        self.m = nn.ModuleList(blocks if blocks is not None else
                               (Bottleneck(hidden, shortcut=shortcut, norm=norm, act=act) for _ in range(depth)))

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


class C3(nn.Module):
    """YOLOv5's CSP block: ``cv1`` and ``cv2`` (1x1 to h), ``m`` (bottlenecks on cv1's path), concat, ``cv3`` (1x1).

    Ultralytics ``C3`` (bottlenecks of a 1x1 then a 3x3, e=1); ``C3k`` is the same with ``kernels=(3, 3)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, hidden: int, depth: int, shortcut: bool, norm: str,
                 act: str, kernels: tuple[int, int] = (1, 3)) -> None:
        super().__init__()
        bias = norm == "none"
        self.cv1 = ConvNormAct(in_channels, hidden, kernel=1, bias=bias, norm=norm, act=act)
        self.cv2 = ConvNormAct(in_channels, hidden, kernel=1, bias=bias, norm=norm, act=act)
        self.cv3 = ConvNormAct(2 * hidden, out_channels, kernel=1, bias=bias, norm=norm, act=act)
        self.m = nn.Sequential(*(Bottleneck(hidden, shortcut=shortcut, norm=norm, act=act, kernels=kernels)
                                 for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


def c3k2_blocks(hidden: int, *, depth: int, c3k: bool, shortcut: bool, norm: str, act: str) -> list[nn.Module]:
    """The inner blocks of YOLO11's C3k2 on ``hidden`` channels: C3k (two 3x3 bottlenecks at half width) when
    ``c3k``, else bottlenecks of two 3x3 convs through ``hidden // 2`` (Ultralytics' default e=0.5)."""
    if c3k:
        return [C3(hidden, hidden, hidden=hidden // 2, depth=2, shortcut=shortcut, norm=norm, act=act, kernels=(3, 3))
                for _ in range(depth)]
    return [Bottleneck(hidden, hidden=hidden // 2, shortcut=shortcut, norm=norm, act=act) for _ in range(depth)]


class PSAttention(nn.Module):
    """Ultralytics' ``Attention``: ``qkv`` (1x1 conv + norm to 2·heads·key_dim + C), multi-head softmax attention over
    the H·W positions, plus ``pe`` (depthwise 3x3 conv + norm) of v, then ``proj`` (1x1 conv + norm).

    The attention runs through :func:`netspec.modules.attention.attend` (SDPA, or bounded chunks on the CPU where
    the key and value sizes differ), so the (HW x HW) score matrix is never held whole at large maps.
    """

    def __init__(self, channels: int, *, heads: int, key_dim: int, norm: str) -> None:
        super().__init__()
        self.heads, self.key_dim, self.head_dim = heads, key_dim, channels // heads
        bias = norm == "none"
        self.qkv = ConvNormAct(channels, channels + 2 * key_dim * heads, kernel=1, bias=bias, norm=norm, act="none")
        self.proj = ConvNormAct(channels, channels, kernel=1, bias=bias, norm=norm, act="none")
        self.pe = ConvNormAct(channels, channels, kernel=3, padding=1, groups=channels, bias=bias, norm=norm, act="none")
        self.scale = key_dim**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from netspec.modules.attention import attend

        batch, channels, height, width = x.shape
        tokens = height * width
        q, k, v = self.qkv(x).view(batch, self.heads, 2 * self.key_dim + self.head_dim, tokens).split(
            [self.key_dim, self.key_dim, self.head_dim], dim=2)
        flat = batch * self.heads
        out = attend(q.reshape(flat, self.key_dim, tokens).transpose(1, 2),
                     k.reshape(flat, self.key_dim, tokens).transpose(1, 2),
                     v.reshape(flat, self.head_dim, tokens).transpose(1, 2), scale=self.scale)
        out = out.transpose(1, 2).reshape(batch, channels, height, width)
        return self.proj(out + self.pe(v.reshape(batch, channels, height, width)))


class PSABlock(nn.Module):
    """Ultralytics ``PSABlock``: ``x + attn(x)``, then ``+ ffn`` (1x1 conv to 2C with act, 1x1 conv back, no act)."""

    def __init__(self, channels: int, *, heads: int, key_dim: int, shortcut: bool, norm: str, act: str) -> None:
        super().__init__()
        bias = norm == "none"
        self.attn = PSAttention(channels, heads=heads, key_dim=key_dim, norm=norm)
        self.ffn = nn.Sequential(ConvNormAct(channels, 2 * channels, kernel=1, bias=bias, norm=norm, act=act),
                                 ConvNormAct(2 * channels, channels, kernel=1, bias=bias, norm=norm, act="none"))
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x) if self.shortcut else self.attn(x)
        return x + self.ffn(x) if self.shortcut else self.ffn(x)


class C2PSA(nn.Module):
    """YOLO11's C2PSA: ``cv1`` (1x1 to 2h), split, ``m`` (PSABlocks on the second half), concat, ``cv2`` (1x1)."""

    def __init__(self, in_channels: int, out_channels: int, *, hidden: int, depth: int, heads: int, key_dim: int,
                 norm: str, act: str) -> None:
        super().__init__()
        bias = norm == "none"
        self.hidden = hidden
        self.cv1 = ConvNormAct(in_channels, 2 * hidden, kernel=1, bias=bias, norm=norm, act=act)
        self.cv2 = ConvNormAct(2 * hidden, out_channels, kernel=1, bias=bias, norm=norm, act=act)
        self.m = nn.Sequential(*(PSABlock(hidden, heads=heads, key_dim=key_dim, shortcut=True, norm=norm, act=act)
                                 for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.hidden, self.hidden), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))


class C2(nn.Module):
    """YOLOv8-p6's C2: ``cv1`` (1x1 to 2h), split, ``m`` (bottlenecks of two 3x3 convs on the first half), concat with
    the second, ``cv2`` (1x1). Registered ``cv1``, ``cv2``, ``m``, as Ultralytics ``C2``."""

    def __init__(self, in_channels: int, out_channels: int, *, hidden: int, depth: int, shortcut: bool,
                 norm: str, act: str) -> None:
        super().__init__()
        bias = norm == "none"
        self.cv1 = ConvNormAct(in_channels, 2 * hidden, kernel=1, bias=bias, norm=norm, act=act)
        self.cv2 = ConvNormAct(2 * hidden, out_channels, kernel=1, bias=bias, norm=norm, act=act)
        self.m = nn.Sequential(*(Bottleneck(hidden, shortcut=shortcut, norm=norm, act=act) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).chunk(2, 1)
        return self.cv2(torch.cat((self.m(a), b), 1))


class GhostConv(nn.Module):
    """GhostNet's ghost module as Ultralytics' ``GhostConv``: ``cv1`` (``kernel``/``stride`` conv to h = out // 2),
    ``cv2`` (depthwise 5x5 of it), the two concatenated (2h channels)."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int = 1, stride: int = 1, norm: str,
                 act: str) -> None:
        super().__init__()
        hidden = out_channels // 2
        bias = norm == "none"
        self.cv1 = ConvNormAct(in_channels, hidden, kernel=kernel, stride=stride, padding=kernel // 2, bias=bias,
                               norm=norm, act=act)
        self.cv2 = ConvNormAct(hidden, hidden, kernel=5, padding=2, groups=hidden, bias=bias, norm=norm, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv1(x)
        return torch.cat((y, self.cv2(y)), 1)


class GhostBottleneck(nn.Module):
    """Ultralytics' ``GhostBottleneck`` at stride 1 (as C3Ghost builds it): ``conv`` = GhostConv (1x1 to
    channels/2), Identity, GhostConv (1x1 back, no activation); plus ``x`` (``shortcut``: Identity)."""

    def __init__(self, channels: int, *, norm: str, act: str) -> None:
        super().__init__()
        hidden = channels // 2
        self.conv = nn.Sequential(GhostConv(channels, hidden, norm=norm, act=act), nn.Identity(),
                                  GhostConv(hidden, channels, norm=norm, act="none"))
        self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.shortcut(x)


class C3Ghost(C3):
    """Ultralytics' ``C3Ghost``: a C3 (``cv1``, ``cv2``, ``cv3``) whose ``m`` holds ghost bottlenecks."""

    def __init__(self, in_channels: int, out_channels: int, *, hidden: int, depth: int, norm: str, act: str) -> None:
        super().__init__(in_channels, out_channels, hidden=hidden, depth=0, shortcut=True, norm=norm, act=act)
        self.m = nn.Sequential(*(GhostBottleneck(hidden, norm=norm, act=act) for _ in range(depth)))
