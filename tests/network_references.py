"""Reference networks written with plain torch modules, in the layout and module order of their official code.

torchvision, the DANet repository, milesial/Pytorch-UNet and Ultralytics do not import here, so each is written
out as its source builds it (same module registration order, so the same state-dict order; same op order and
defaults). The faithfulness tests give these random weights, copy them into netspec's models by state-dict order
(:func:`copy_by_order`) and compare outputs.
"""
from __future__ import annotations

import math
import sys
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

_BENCHMARKS = str(Path(__file__).resolve().parent.parent / "benchmarks")
sys.path.insert(0, _BENCHMARKS)
try:  # torchvision's Bottleneck, junfu1115/DANet's PAM_Module and CAM_Module, as the benchmarks' baselines write them
    import baselines
    from baselines import CAMBaseline as CAM_Module
    from baselines import PAMBaseline as PAM_Module
finally:
    sys.path.remove(_BENCHMARKS)

# ---------------------------------------------------------------------------------------------
# torchvision ResNet-50 trunk (torchvision/models/resnet.py), with replace_stride_with_dilation


class Bottleneck(baselines.Bottleneck):
    """torchvision's ``Bottleneck`` with its ``dilation`` argument (the 3x3 conv at padding = dilation)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1) -> None:
        super().__init__(inplanes, planes, stride, downsample)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


class ResNet50Trunk(nn.Module):
    """torchvision ``resnet50`` without avgpool/fc; ``dilate`` is ``replace_stride_with_dilation``."""

    def __init__(self, dilate: tuple[bool, bool, bool] = (False, False, False)) -> None:
        super().__init__()
        self.inplanes, self.dilation = 64, 1
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(256, 6, stride=2, dilate=dilate[1])
        self.layer4 = self._make_layer(512, 3, stride=2, dilate=dilate[2])

    def _make_layer(self, planes: int, blocks: int, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample, previous_dilation)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


# ---------------------------------------------------------------------------------------------
# DANet (junfu1115/DANet encoding/models/sseg/danet.py and encoding/nn/da_att.py)


class DANetHead(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, norm_layer: type[nn.Module] = nn.BatchNorm2d) -> None:
        super().__init__()
        inter_channels = in_channels // 4
        self.conv5a = nn.Sequential(nn.Conv2d(in_channels, inter_channels, 3, padding=1, bias=False),
                                    norm_layer(inter_channels), nn.ReLU())
        self.conv5c = nn.Sequential(nn.Conv2d(in_channels, inter_channels, 3, padding=1, bias=False),
                                    norm_layer(inter_channels), nn.ReLU())
        self.sa = PAM_Module(inter_channels)
        self.sc = CAM_Module(inter_channels)
        self.conv51 = nn.Sequential(nn.Conv2d(inter_channels, inter_channels, 3, padding=1, bias=False),
                                    norm_layer(inter_channels), nn.ReLU())
        self.conv52 = nn.Sequential(nn.Conv2d(inter_channels, inter_channels, 3, padding=1, bias=False),
                                    norm_layer(inter_channels), nn.ReLU())
        self.conv6 = nn.Sequential(nn.Dropout2d(0.1, False), nn.Conv2d(512, out_channels, 1))
        self.conv7 = nn.Sequential(nn.Dropout2d(0.1, False), nn.Conv2d(512, out_channels, 1))
        self.conv8 = nn.Sequential(nn.Dropout2d(0.1, False), nn.Conv2d(512, out_channels, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        sa_conv = self.conv51(self.sa(self.conv5a(x)))
        sa_output = self.conv6(sa_conv)
        sc_conv = self.conv52(self.sc(self.conv5c(x)))
        sc_output = self.conv7(sc_conv)
        sasc_output = self.conv8(sa_conv + sc_conv)
        return sasc_output, sa_output, sc_output


class DANet(nn.Module):
    """DANet(nclass, 'resnet50') at output stride 8 (``dilated=True``), without the unused fc of the trunk."""

    def __init__(self, nclass: int = 19) -> None:
        super().__init__()
        self.pretrained = ResNet50Trunk(dilate=(False, True, True))
        self.head = DANetHead(2048, nclass)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        imsize = x.size()[2:]
        outputs = self.head(self.pretrained(x))
        return tuple(F.interpolate(out, imsize, mode="bilinear", align_corners=True) for out in outputs)


# ---------------------------------------------------------------------------------------------
# torchvision DeepLabV3 (torchvision/models/segmentation/deeplabv3.py, _utils.py)


class ASPPConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


class ASPPPooling(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        for mod in self:
            x = mod(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    def __init__(self, in_channels: int, atrous_rates: tuple[int, ...], out_channels: int = 256) -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                                  nn.BatchNorm2d(out_channels), nn.ReLU())]
        modules += [ASPPConv(in_channels, out_channels, rate) for rate in atrous_rates]
        modules.append(ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(modules)
        self.project = nn.Sequential(nn.Conv2d(len(self.convs) * out_channels, out_channels, 1, bias=False),
                                     nn.BatchNorm2d(out_channels), nn.ReLU(), nn.Dropout(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([conv(x) for conv in self.convs], dim=1))


class DeepLabHead(nn.Sequential):
    def __init__(self, in_channels: int, num_classes: int, atrous_rates: tuple[int, ...] = (12, 24, 36)) -> None:
        super().__init__(ASPP(in_channels, atrous_rates), nn.Conv2d(256, 256, 3, padding=1, bias=False),
                         nn.BatchNorm2d(256), nn.ReLU(), nn.Conv2d(256, num_classes, 1))


class DeepLabV3(nn.Module):
    """``deeplabv3_resnet50(num_classes=21, aux_loss=False)``: backbone (OS8) then classifier, result['out']."""

    def __init__(self, num_classes: int = 21) -> None:
        super().__init__()
        self.backbone = ResNet50Trunk(dilate=(False, True, True))
        self.classifier = DeepLabHead(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.classifier(self.backbone(x))
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)


# ---------------------------------------------------------------------------------------------
# milesial/Pytorch-UNet (unet/unet_parts.py, unet/unet_model.py)


class DoubleConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None) -> None:
        super().__init__()
        mid_channels = mid_channels or out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class Up(nn.Module):
    """``Up(in, out, bilinear=False)``: ConvTranspose2d(in, in // 2, 2, 2), pad to the skip, cat([skip, up])."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        x1 = self.up(x1)
        diff_y, diff_x = x2.size()[2] - x1.size()[2], x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class UNet(nn.Module):
    """``UNet(n_channels, n_classes, bilinear=False)``."""

    def __init__(self, n_channels: int = 3, n_classes: int = 2) -> None:
        super().__init__()
        self.inc = DoubleConv(n_channels, 64)
        self.down1 = Down(64, 128)
        self.down2 = Down(128, 256)
        self.down3 = Down(256, 512)
        self.down4 = Down(512, 1024)
        self.up1 = Up(1024, 512)
        self.up2 = Up(512, 256)
        self.up3 = Up(256, 128)
        self.up4 = Up(128, 64)
        self.outc = nn.Conv2d(64, n_classes, kernel_size=1)  # OutConv's conv (no other module inside it)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up1(x5, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        return self.outc(x)


# ---------------------------------------------------------------------------------------------
# Ultralytics YOLOv8 (ultralytics/nn/modules/conv.py Conv, block.py Bottleneck/C2f/SPPF, cfg/models/v8/yolov8.yaml)


def autopad(k: int, p: int | None = None, d: int = 1) -> int:
    if d > 1:
        k = d * (k - 1) + 1
    return k // 2 if p is None else p


class Conv(nn.Module):
    default_act = nn.SiLU()

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1, d: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = self.default_act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class YoloBottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, k: tuple[int, int] = (3, 3),
                 e: float = 0.5) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C2f(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(YoloBottleneck(self.c, self.c, shortcut, g, k=(3, 3), e=1.0) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class Concat(nn.Module):
    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(x, 1)


YOLOV8 = [  # yolov8.yaml backbone + head without Detect: (from, repeats, module, args)
    (-1, 1, "Conv", [64, 3, 2]), (-1, 1, "Conv", [128, 3, 2]), (-1, 3, "C2f", [128, True]),
    (-1, 1, "Conv", [256, 3, 2]), (-1, 6, "C2f", [256, True]), (-1, 1, "Conv", [512, 3, 2]),
    (-1, 6, "C2f", [512, True]), (-1, 1, "Conv", [1024, 3, 2]), (-1, 3, "C2f", [1024, True]),
    (-1, 1, "SPPF", [1024, 5]),
    (-1, 1, "Upsample", [None, 2, "nearest"]), ([-1, 6], 1, "Concat", [1]), (-1, 3, "C2f", [512]),
    (-1, 1, "Upsample", [None, 2, "nearest"]), ([-1, 4], 1, "Concat", [1]), (-1, 3, "C2f", [256]),
    (-1, 1, "Conv", [256, 3, 2]), ([-1, 12], 1, "Concat", [1]), (-1, 3, "C2f", [512]),
    (-1, 1, "Conv", [512, 3, 2]), ([-1, 9], 1, "Concat", [1]), (-1, 3, "C2f", [1024]),
]
YOLOV8_OUTPUTS = (15, 18, 21)  # what Detect reads


class YOLOv8Neck(nn.Module):
    """Ultralytics' ``parse_model`` for layers 0-21 at a scale; ``forward`` is ``_predict_once``'s routing."""

    def __init__(self, width: float = 0.25, depth: float = 0.33, max_channels: int = 1024) -> None:
        super().__init__()
        channels: list[int] = []  # each layer's output channels, by Ultralytics' absolute index
        layers = []
        self.froms: list[int | list[int]] = []
        for f, n, name, args in YOLOV8:
            n = max(round(n * depth), 1) if n > 1 else n
            c1 = channels[f] if channels and isinstance(f, int) else 3
            if name in ("Conv", "C2f", "SPPF"):
                c2 = math.ceil(min(args[0], max_channels) * width / 8) * 8  # make_divisible(min(c2, max) * w, 8)
                if name == "Conv":
                    module: nn.Module = Conv(c1, c2, *args[1:])
                elif name == "C2f":
                    module = C2f(c1, c2, n, *args[1:])
                else:
                    module = SPPF(c1, c2, *args[1:])
            elif name == "Upsample":
                module, c2 = nn.Upsample(*args), c1
            else:
                module, c2 = Concat(), sum(channels[j] for j in f)  # type: ignore[union-attr]
            layers.append(module)
            self.froms.append(f)
            channels.append(c2)
        self.model = nn.Sequential(*layers)
        for m in self.modules():  # initialize_weights
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = 1e-3, 0.03

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y: list[torch.Tensor] = []
        for m, f in zip(self.model, self.froms):
            if f != -1:
                x = y[f] if isinstance(f, int) else [x if j == -1 else y[j] for j in f]
            x = m(x)
            y.append(x)
        return tuple(y[i] for i in YOLOV8_OUTPUTS)


# ---------------------------------------------------------------------------------------------
# Same weights in both


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights, biases, norm statistics and attention gammas (so every branch reaches the outputs)."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor: torch.Tensor, low: float, high: float) -> None:
        tensor.copy_(torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype) * (high - low) + low)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = module.weight[0].numel() if isinstance(module, nn.Conv2d) else module.weight[:, 0].numel()
                bound = math.sqrt(3.0 / fan_in)
                uniform(module.weight, -bound, bound)
                if module.bias is not None:
                    uniform(module.bias, -0.1, 0.1)
            elif isinstance(module, nn.BatchNorm2d):
                uniform(module.weight, 0.5, 1.5)
                uniform(module.bias, -0.2, 0.2)
                uniform(module.running_mean, -0.2, 0.2)
                uniform(module.running_var, 0.5, 1.5)
            for name, parameter in module.named_parameters(recurse=False):
                if name == "gamma":
                    uniform(parameter, 0.2, 1.0)
    return model


def copy_by_order(source: nn.Module, target: nn.Module, *, reshape: bool = False) -> None:
    """Load ``source``'s state dict into ``target`` entry by entry, in order, as a by-architecture loader does.

    ``reshape``: a tensor may change shape where its elements do not (a 1x1 conv's weight into a Linear's).
    """
    source_items = list(source.state_dict().items())
    target_items = list(target.state_dict().items())
    assert len(source_items) == len(target_items), (len(source_items), len(target_items))
    for (source_name, value), (target_name, slot) in zip(source_items, target_items):
        fits = value.numel() == slot.numel() if reshape and value.dim() > 1 else value.shape == slot.shape
        assert fits, f"{source_name} {tuple(value.shape)} -> {target_name} {tuple(slot.shape)}"
    target.load_state_dict({name: value.reshape(slot.shape) for (_, value), (name, slot) in zip(source_items,
                                                                                             target_items)})


class ResBottleneckBlock(nn.Module):
    """torchvision's RegNet block in its module layout (torchvision/models/regnet.py, no SE): the projection
    shortcut ``proj`` is registered before the body ``f``."""

    def __init__(self, cin: int, cout: int, stride: int, width: int, group_width: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.f = nn.Sequential(OrderedDict(
            a=nn.Sequential(nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()),
            b=nn.Sequential(nn.Conv2d(width, width, 3, stride, 1, groups=width // group_width, bias=False),
                            nn.BatchNorm2d(width), nn.ReLU()),
            c=nn.Sequential(nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))))
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.proj(x) + self.f(x))


ResBottleneckBlock.__module__ = "torchvision.models.regnet"  # its class as netspec.weights.SHORTCUT_FIRST and the
# importer name it (netspec reads the block by its class: the module layout alone is not enough)
