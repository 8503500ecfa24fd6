"""timm 1.0.31's ``hrnet_w18_small`` (timm/models/hrnet.py), written out with plain torch modules.

timm does not import here, so the network is rebuilt in its module layout: the same module registration order
(so the same state-dict order: stem, layer1, transition1, stage2, transition2, stage3, transition3, stage4,
incre_modules, downsamp_modules, final_layer, classifier), the same ops in the same order (BatchNorm momentum
0.1, eps 1e-5; nearest upsampling by 2**(j-i); fuse sums in branch order, then ReLU) and the same config
(``cfg_cls['hrnet_w18_small']``). A throwaway check against timm itself (equal parameter count, equal outputs
with timm's weights copied in) is described in the report of the `repeat` branch.
"""
from __future__ import annotations

import torch
from torch import nn

BN_MOMENTUM = 0.1

W18_SMALL = {
    "stem_width": 64,
    "stage1": {"num_modules": 1, "num_branches": 1, "block": "BOTTLENECK", "num_blocks": (1,), "num_channels": (32,)},
    "stage2": {"num_modules": 1, "num_branches": 2, "block": "BASIC", "num_blocks": (2, 2), "num_channels": (16, 32)},
    "stage3": {"num_modules": 1, "num_branches": 3, "block": "BASIC", "num_blocks": (2, 2, 2),
               "num_channels": (16, 32, 64)},
    "stage4": {"num_modules": 1, "num_branches": 4, "block": "BASIC", "num_blocks": (2, 2, 2, 2),
               "num_channels": (16, 32, 64, 128)},
}


def conv_bn(in_chs: int, out_chs: int, kernel: int, stride: int, *, relu: bool, bias: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_chs, out_chs, kernel, stride, kernel // 2, bias=bias),
                               nn.BatchNorm2d(out_chs, momentum=BN_MOMENTUM)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.act2 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(y)) + shortcut)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.act2(self.bn2(self.conv2(y)))
        return self.act3(self.bn3(self.conv3(y)) + shortcut)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def make_layer(block: type[BasicBlock] | type[Bottleneck], inplanes: int, planes: int, blocks: int,
               stride: int = 1) -> nn.Sequential:
    """timm's ``_make_layer``: a 1x1 conv + BN shortcut on the first block when the shape changes."""
    out = planes * block.expansion
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False),
                                   nn.BatchNorm2d(out, momentum=BN_MOMENTUM))
    return nn.Sequential(block(inplanes, planes, stride, downsample), *(block(out, planes) for _ in range(blocks - 1)))


class HighResolutionModule(nn.Module):
    """Parallel branches of blocks, then fuse layers: output i = ReLU(sum over j of branch j resized to i)."""

    def __init__(self, num_branches: int, block: type[BasicBlock] | type[Bottleneck], num_blocks: tuple[int, ...],
                 in_chs: list[int], num_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.num_branches = num_branches
        self.branches = nn.ModuleList(make_layer(block, in_chs[i], num_channels[i], num_blocks[i])
                                      for i in range(num_branches))
        self.out_chs = [channels * block.expansion for channels in num_channels]
        self.fuse_layers = self._fuse_layers() if num_branches > 1 else nn.Identity()
        self.fuse_act = nn.ReLU(False)

    def _fuse_layers(self) -> nn.ModuleList:
        chs = self.out_chs
        rows = []
        for i in range(self.num_branches):
            row: list[nn.Module] = []
            for j in range(self.num_branches):
                if j > i:  # coarser: 1x1 conv + BN, nearest upsampling
                    row.append(nn.Sequential(nn.Conv2d(chs[j], chs[i], 1, 1, 0, bias=False),
                                             nn.BatchNorm2d(chs[i], momentum=BN_MOMENTUM),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(nn.Identity())
                else:  # finer: i - j 3x3 stride-2 convs, ReLU after all but the last
                    steps = [conv_bn(chs[j], chs[j], 3, 2, relu=True) for _ in range(i - j - 1)]
                    row.append(nn.Sequential(*steps, conv_bn(chs[j], chs[i], 3, 2, relu=False)))
            rows.append(nn.ModuleList(row))
        return nn.ModuleList(rows)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.num_branches == 1:
            return [self.branches[0](xs[0])]
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        fused = []
        for row in self.fuse_layers:
            total = row[0](xs[0])
            for j in range(1, self.num_branches):
                total = total + row[j](xs[j])
            fused.append(self.fuse_act(total))
        return fused


class SequentialList(nn.Sequential):
    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:  # type: ignore[override]
        for module in self:
            xs = module(xs)
        return xs


class HighResolutionNet(nn.Module):
    """timm's ``HighResolutionNet`` with its classification head (``head='classification'``, conv bias on)."""

    def __init__(self, cfg: dict = W18_SMALL, num_classes: int = 1000) -> None:
        super().__init__()
        stem = cfg["stem_width"]
        self.conv1 = nn.Conv2d(3, stem, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(stem, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.act2 = nn.ReLU(inplace=True)
        first = cfg["stage1"]
        block = BLOCKS[first["block"]]
        self.layer1 = make_layer(block, 64, first["num_channels"][0], first["num_blocks"][0])
        previous = [block.expansion * first["num_channels"][0]]
        for index in (2, 3, 4):
            stage = cfg[f"stage{index}"]
            block = BLOCKS[stage["block"]]
            channels = [c * block.expansion for c in stage["num_channels"]]
            setattr(self, f"transition{index - 1}", self._transition(previous, channels))
            modules = []
            for _ in range(stage["num_modules"]):
                modules.append(HighResolutionModule(stage["num_branches"], block, stage["num_blocks"], channels,
                                                    stage["num_channels"]))
                channels = modules[-1].out_chs
            setattr(self, f"stage{index}", SequentialList(*modules))
            previous = channels
        head = [32, 64, 128, 256]
        self.incre_modules = nn.ModuleList(make_layer(Bottleneck, c, head[i], 1) for i, c in enumerate(previous))
        self.downsamp_modules = nn.ModuleList(
            conv_bn(head[i] * 4, head[i + 1] * 4, 3, 2, relu=True, bias=True) for i in range(len(previous) - 1))
        self.final_layer = conv_bn(head[-1] * 4, 2048, 1, 1, relu=True, bias=True)
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.classifier = nn.Linear(2048, num_classes)

    @staticmethod
    def _transition(before: list[int], after: list[int]) -> nn.ModuleList:
        layers: list[nn.Module] = []
        for i, out in enumerate(after):
            if i < len(before):
                layers.append(conv_bn(before[i], out, 3, 1, relu=True) if out != before[i] else nn.Identity())
            else:  # a new, coarser branch from the last one: 3x3 stride-2 convs
                steps = [conv_bn(before[-1], out if k == i - len(before) else before[-1], 3, 2, relu=True)
                         for k in range(i + 1 - len(before))]
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        ys = self.stage2([t(x) for t in self.transition1])
        ys = self.stage3([ys[i] if isinstance(t, nn.Identity) else t(ys[-1]) for i, t in enumerate(self.transition2)])
        ys = self.stage4([ys[i] if isinstance(t, nn.Identity) else t(ys[-1]) for i, t in enumerate(self.transition3)])
        y = self.incre_modules[0](ys[0])
        for i in range(1, len(self.incre_modules)):
            y = self.incre_modules[i](ys[i]) + self.downsamp_modules[i - 1](y)
        return self.classifier(self.global_pool(self.final_layer(y)))
