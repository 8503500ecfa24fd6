"""``netspec.from_module`` on plain torch models (no timm needed): graphs, located errors, the verification."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import netspec
from netspec.importers.modules import ConversionError, verify_spec


class TwoPaths(nn.Module):
    """A stem, two branches (one reused by a later merge) and a head: names and `from:` in the spec."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.left = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.SiLU())
        self.right = nn.Conv2d(8, 8, 1)
        self.fuse = nn.Conv2d(16, 16, 1, bias=False)
        self.norm = nn.BatchNorm2d(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        a = self.left(x)
        b = self.right(x)
        y = self.norm(self.fuse(torch.cat([a + b, b], dim=1)))
        return self.fc(torch.flatten(self.pool(y), 1))


def _shuffle_norms(model: nn.Module) -> nn.Module:
    """Random BN statistics and affine params, so the equality check sees every norm."""
    generator = torch.Generator().manual_seed(3)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model


def test_a_branching_model_becomes_a_graph_spec_with_equal_outputs() -> None:
    torch.manual_seed(0)
    source = _shuffle_norms(TwoPaths())
    spec = netspec.from_module(source, input_size=32)
    text = spec.to_yaml()
    assert "from:" in text and "name:" in text
    kinds = [layer.kind for layer in spec.layers]
    assert kinds == ["conv", "conv", "conv", "add", "concat", "conv", "avgpool", "linear"], kinds
    left, right = spec.layers[1], spec.layers[2]
    assert left.act == "silu" and right.norm == "none" and right.bias is None  # a bias-free default left out
    result = verify_spec(spec, source, input_size=32)
    assert result.params == sum(p.numel() for p in source.parameters())
    assert result.max_difference <= 1e-5
    model = netspec.build(netspec.loads(text))
    assert isinstance(model, torch.fx.GraphModule)


def test_conversion_reads_norm_settings_into_the_defaults() -> None:
    source = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4, eps=1e-3, momentum=0.03),
                           nn.ReLU6(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    spec = netspec.from_module(source, input_size=8)
    assert spec.defaults.eps == 1e-3 and spec.defaults.momentum == 0.03 and spec.defaults.act == "relu6"
    assert [layer.kind for layer in spec.layers] == ["conv", "maxpool", "flatten", "linear"]


class Weird(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) * 2


def test_an_unknown_module_is_named_with_its_class_and_place_and_the_known_classes_listed() -> None:
    source = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(Weird()))
    with pytest.raises(ConversionError) as caught:
        netspec.from_module(source, verify=False)
    message = str(caught.value)
    assert "Weird at 1.0" in message and "sin" in message
    with pytest.raises(ConversionError) as caught:
        netspec.from_module(nn.Sequential(nn.Conv2d(3, 4, 3), nn.PixelShuffle(2)), verify=False)
    message = str(caught.value)
    assert "PixelShuffle at 1" in message and "Bottleneck" in message and "SEModule" in message


class Scaled(nn.Module):
    """Reads its own parameter in its forward (no netspec kind does); takes an optional second argument."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4, 1, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return x * self.scale


def test_unknown_ops_are_one_line_per_reason_with_the_known_classes() -> None:
    source = nn.Sequential(nn.Conv2d(3, 4, 3), Scaled(), nn.Conv2d(4, 4, 3), Scaled())
    with pytest.raises(ConversionError) as caught:
        netspec.from_module(source, verify=False)
    lines = [str(problem) for problem in caught.value.problems]
    assert any("Scaled at 1 (and 1 more like it): reads its tensor scale directly" in line for line in lines), lines
    assert "netspec knows these blocks" in lines[-1] and "Bottleneck" in lines[-1]


class OptionalArgument(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(x)


def test_an_unused_optional_forward_argument_is_not_a_second_input() -> None:
    spec = netspec.from_module(OptionalArgument(), input_size=8)  # verified
    assert [layer.kind for layer in spec.layers] == ["conv"]


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.conv(x)
        return self.conv(-x)


def test_an_untraceable_forward_gives_fx_reason() -> None:
    with pytest.raises(ConversionError) as caught:
        netspec.from_module(DataDependent())
    message = str(caught.value)
    assert "torch.fx cannot trace" in message and "DataDependent" in message and "control flow" in message


def test_a_spec_that_does_not_reproduce_the_module_is_refused() -> None:
    source = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    spec = netspec.from_module(source, input_size=8)
    assert "norm: none}" in spec.to_yaml()
    wrong = netspec.loads(spec.to_yaml().replace("norm: none}", "norm: none, act: silu}"))
    with pytest.raises(ConversionError, match="differs"):
        verify_spec(wrong, source, input_size=8)
    bigger = netspec.loads(spec.to_yaml().replace("out: 4", "out: 5"))
    with pytest.raises(ConversionError, match="parameters"):
        verify_spec(bigger, source, input_size=8)

    source[0].weight.data.fill_(3e38)  # finite weights, an output that overflows to inf: it proves nothing
    with pytest.raises(ConversionError, match="not finite"):
        verify_spec(spec, source, input_size=8)


def test_cli_import_refuses_an_unknown_source(capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main

    assert main(["import", "caffe:alexnet"]) == 1
    assert "timm:NAME" in capsys.readouterr().err
    assert main(["import", "timm:resnet18", "--args", "[1]"]) == 2


def test_torchvision_regnet_block_reads_as_regnet_and_its_projection_must_be_bias_free() -> None:
    """torchvision's ``ResBottleneckBlock`` (its layout in ``network_references``): ``block: regnet``, proven
    (strict load in the order the class says, equal outputs); a biased projection, which netspec's block has
    not, is refused as timm's RegNet's is (one reader for both)."""
    from network_references import ResBottleneckBlock

    torch.manual_seed(0)
    source = nn.Sequential(ResBottleneckBlock(8, 16, 2, 12, 4)).eval()
    spec = netspec.from_module(source, input_size=8)
    assert "stage: {out: 16, block: regnet, stride: 2, width: 12, group_width: 4}" in spec.to_yaml()
    source[0].proj[0] = nn.Conv2d(8, 16, 1, 2, bias=True)
    with pytest.raises(ConversionError, match="ResBottleneckBlock at 0: its shortcut is not a bias-free 1x1 conv"):
        netspec.from_module(source, input_size=8)
