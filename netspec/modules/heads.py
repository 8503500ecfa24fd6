"""Ultralytics' detection and segmentation heads (ultralytics/nn/modules/head.py Detect, Segment; block.py DFL,
Proto), in Ultralytics' registration order so that weights copy over by state-dict order.

Training mode returns what Ultralytics 8.4's heads return in training, a dict of raw predictions over all anchor
points; eval mode returns the decoded tensor (Ultralytics' eval output, without the raw dict it pairs it with).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from netspec.modules.conv import ConvNormAct


class DFL(nn.Module):
    """Distribution focal loss integral: softmax over ``bins`` per box side, expectation with a fixed 1x1 ``conv``
    whose weights are 0 .. bins-1 (not trained, as Ultralytics' ``DFL``)."""

    def __init__(self, bins: int) -> None:
        super().__init__()
        self.bins = bins
        self.conv = nn.Conv2d(bins, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(bins, dtype=torch.float).view(1, bins, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, anchors = x.shape
        return self.conv(x.view(batch, 4, self.bins, anchors).transpose(2, 1).softmax(1)).view(batch, 4, anchors)


def make_anchors(feats: list[torch.Tensor], strides: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell-centre anchor points (2, A) in grid units and each one's stride (1, A), for maps of any H x W."""
    points, stride_rows = [], []
    for feat, stride in zip(feats, strides):
        height, width = feat.shape[2:]
        sx = torch.arange(width, device=feat.device, dtype=feat.dtype) + 0.5
        sy = torch.arange(height, device=feat.device, dtype=feat.dtype) + 0.5
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((sx, sy), -1).view(-1, 2))
        stride_rows.append(feat.new_full((height * width, 1), stride))
    return torch.cat(points).transpose(0, 1), torch.cat(stride_rows).transpose(0, 1)


def conv_branch(in_channels: int, width: int, out: int, *, norm: str, act: str) -> nn.Sequential:
    """3x3 conv + norm + act, 3x3 conv + norm + act, 1x1 conv with bias (Detect's box branch, v8's class branch)."""
    bias = norm == "none"
    return nn.Sequential(ConvNormAct(in_channels, width, kernel=3, padding=1, bias=bias, norm=norm, act=act),
                         ConvNormAct(width, width, kernel=3, padding=1, bias=bias, norm=norm, act=act),
                         nn.Conv2d(width, out, 1))


def depthwise_branch(in_channels: int, width: int, out: int, *, norm: str, act: str) -> nn.Sequential:
    """YOLO11's class branch: (depthwise 3x3, 1x1) twice, each conv + norm + act, then a 1x1 conv with bias."""
    bias = norm == "none"

    def pair(channels: int) -> nn.Sequential:
        return nn.Sequential(
            ConvNormAct(channels, channels, kernel=3, padding=1, groups=channels, bias=bias, norm=norm, act=act),
            ConvNormAct(channels, width, kernel=1, bias=bias, norm=norm, act=act))

    return nn.Sequential(pair(in_channels), pair(width), nn.Conv2d(width, out, 1))


class Detect(nn.Module):
    """Anchor-free YOLO head (v5u, v8, 11) over any number of levels, read as separate inputs.

    Training: ``{"boxes": (B, 4·reg_max, A), "scores": (B, classes, A), "feats": [level maps]}``, the raw box
    distributions and class logits over all A anchor points (Ultralytics 8.4). Eval: (B, 4 + classes, A), boxes
    as centre x, y, width, height in input pixels, then sigmoid class scores, with anchors for the actual input.
    ``stride`` holds each level's stride (a buffer, not saved: Ultralytics' is a plain attribute).
    """

    def __init__(self, channels: list[int], *, classes: int, reg_max: int, legacy: bool, strides: tuple[float, ...],
                 norm: str, act: str, widths: tuple[int, int]) -> None:
        super().__init__()
        self.classes, self.reg_max, self.levels = classes, reg_max, len(channels)
        box_width, class_width = widths  # the kind's shape rule computes them (netspec.layers.detect.detect_widths)
        branch = conv_branch if legacy else depthwise_branch
        self.cv2 = nn.ModuleList(conv_branch(c, box_width, 4 * reg_max, norm=norm, act=act) for c in channels)
        self.cv3 = nn.ModuleList(branch(c, class_width, classes, norm=norm, act=act) for c in channels)
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
        self.strides = tuple(float(s) for s in strides)
        self.register_buffer("stride", torch.tensor(self.strides), persistent=False)
        self.bias_init()

    def bias_init(self) -> None:
        """Ultralytics' initial biases: box outputs 2.0, class logits log(5 / classes / (640 / stride)²)."""
        with torch.no_grad():
            for box, cls, stride in zip(self.cv2, self.cv3, self.strides):
                box[-1].bias.fill_(2.0)
                cls[-1].bias.fill_(math.log(5 / self.classes / (640 / stride) ** 2))

    def raw(self, feats: list[torch.Tensor]) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        batch = feats[0].shape[0]
        boxes = torch.cat([head(x).view(batch, 4 * self.reg_max, -1) for head, x in zip(self.cv2, feats)], dim=-1)
        scores = torch.cat([head(x).view(batch, self.classes, -1) for head, x in zip(self.cv3, feats)], dim=-1)
        return {"boxes": boxes, "scores": scores, "feats": feats}

    def decode(self, preds: dict[str, torch.Tensor | list[torch.Tensor]]) -> torch.Tensor:
        """(B, 4 + classes, A): xywh boxes in input pixels, sigmoid scores."""
        anchors, strides = make_anchors(preds["feats"], self.strides)  # type: ignore[arg-type]
        distances = self.dfl(preds["boxes"])
        left_top, right_bottom = distances.chunk(2, 1)
        x1y1 = anchors.unsqueeze(0) - left_top
        x2y2 = anchors.unsqueeze(0) + right_bottom
        boxes = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
        return torch.cat((boxes, preds["scores"].sigmoid()), 1)  # type: ignore[union-attr]

    def forward(self, *feats: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        preds = self.raw(list(feats))
        return preds if self.training else self.decode(preds)



class Proto(nn.Module):
    """Mask prototypes (Ultralytics ``Proto``): 3x3 conv, 2x transposed conv (``upsample``), 3x3 conv, 1x1 conv."""

    def __init__(self, in_channels: int, protos: int, masks: int, *, norm: str, act: str) -> None:
        super().__init__()
        bias = norm == "none"
        self.cv1 = ConvNormAct(in_channels, protos, kernel=3, padding=1, bias=bias, norm=norm, act=act)
        self.upsample = nn.ConvTranspose2d(protos, protos, 2, 2, 0, bias=True)
        self.cv2 = ConvNormAct(protos, protos, kernel=3, padding=1, bias=bias, norm=norm, act=act)
        self.cv3 = ConvNormAct(protos, masks, kernel=1, bias=bias, norm=norm, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))


class Segment(Detect):
    """Detect plus per-anchor mask coefficients (``cv4``) and mask prototypes (``proto``) from the first level.

    Training: Detect's dict plus ``"mask_coefficient"`` (B, masks, A) and ``"proto"`` (B, masks, 2H, 2W) (Ultralytics
    8.4). Eval: ``(detections, protos)``: (B, 4 + classes + masks, A), Detect's decoded rows then the mask
    coefficients, and the prototypes (B, masks, 2H, 2W) at twice the first level's size.
    """

    def __init__(self, channels: list[int], *, classes: int, masks: int, protos: int, reg_max: int, legacy: bool,
                 strides: tuple[float, ...], norm: str, act: str, widths: tuple[int, int], mask_width: int) -> None:
        super().__init__(channels, classes=classes, reg_max=reg_max, legacy=legacy, strides=strides, norm=norm,
                         act=act, widths=widths)
        self.masks = masks
        self.proto = Proto(channels[0], protos, masks, norm=norm, act=act)
        width = mask_width  # netspec.layers.detect.segment_width
        self.cv4 = nn.ModuleList(conv_branch(c, width, masks, norm=norm, act=act) for c in channels)

    def forward(self, *feats: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor] | dict[str, torch.Tensor | list[torch.Tensor]]":
        levels = list(feats)
        preds = self.raw(levels)
        batch = levels[0].shape[0]
        preds["mask_coefficient"] = torch.cat([head(x).view(batch, self.masks, -1) for head, x in zip(self.cv4, levels)], 2)
        protos = self.proto(levels[0])
        if self.training:
            preds["proto"] = protos
            return preds
        return torch.cat([self.decode(preds), preds["mask_coefficient"]], 1), protos  # type: ignore[list-item]
