"""Issue: core. Whole networks against published parameter counts, the Python API, YAML round trip."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import netspec
from netspec.layers import SE, AvgPool, Conv, Linear, MaxPool, Stage

SPECS = Path(__file__).resolve().parent.parent / "specs"

# torchvision resnet18 / resnet50; official SENet SE-ResNet-50 (DESIGN.md section 6).
PUBLISHED_PARAMS = {
    "resnet18.yaml": 11_689_512,
    "resnet50.yaml": 25_557_032,
    "se_resnet50.yaml": 28_088_024,
}


@pytest.mark.parametrize("file, expected", sorted(PUBLISHED_PARAMS.items()))
def test_whole_network_matches_published_parameter_count(file: str, expected: int) -> None:
    spec = netspec.load(SPECS / file)
    assert netspec.summary(spec).params == expected
    model = netspec.build(spec)
    assert isinstance(model, torch.nn.Sequential)
    assert sum(p.numel() for p in model.parameters()) == expected
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 1000)


RESNET_CHILDREN = ["conv1", "maxpool1", "stage1", "stage2", "stage3", "stage4", "avgpool1", "linear1"]
TIERED_CHILDREN = ["conv1", "conv2", "conv3", "maxpool1", *(f"stage{i}" for i in range(1, 6)), "avgpool1", "linear1"]
NONLOCAL_CHILDREN = ["conv1", "maxpool1", "stage1", "stage2", "nonlocal1", "stage3", "nonlocal2", "stage4", "nonlocal3",
                     "stage5", "nonlocal4", "stage6", "nonlocal5", "stage7", "avgpool1", "linear1"]
CONVNEXT_CHILDREN = ["conv1", "stage1", "layernorm1", "conv2", "stage2", "layernorm2", "conv3", "stage3", "layernorm3",
                     "conv4", "stage4", "avgpool1", "layernorm4", "linear1"]
SEQUENCES = {  # every sequence spec in specs/: its parameters and the Sequential's children, as before graphs
    "cbam_resnet50.yaml": (28_089_624, RESNET_CHILDREN),
    "eca_resnet50.yaml": (25_557_118, RESNET_CHILDREN),
    "eca_resnet50_k3557.yaml": (25_557_112, RESNET_CHILDREN),
    "nonlocal_resnet50.yaml": (32_915_496, NONLOCAL_CHILDREN),
    "resnet18.yaml": (11_689_512, RESNET_CHILDREN),
    "resnet50.yaml": (25_557_032, RESNET_CHILDREN),
    "se_resnet50.yaml": (28_088_024, RESNET_CHILDREN),
    "sknet50.yaml": (27_479_784, RESNET_CHILDREN),
    "gc_resnet50.yaml": (28_078_773, RESNET_CHILDREN),
    "triplet_resnet50.yaml": (25_561_832, RESNET_CHILDREN),
    "bam_resnet50.yaml": (25_915_099, ["conv1", "maxpool1", "stage1", "bam1", "stage2", "bam2", "stage3", "bam3",
                                       "stage4", "avgpool1", "linear1"]),
    "resnest50.yaml": (27_483_240, ["conv1", "conv2", "conv3", *RESNET_CHILDREN[1:]]),
    "mobilenet_v2.yaml": (3_504_872, ["conv1", *(f"stage{i}" for i in range(1, 8)), "conv2", "avgpool1", "dropout1",
                                      "linear1"]),
    "mobilenet_v2_ca.yaml": (3_950_648, ["conv1", *(f"stage{i}" for i in range(1, 8)), "conv2", "avgpool1", "dropout1",
                                         "linear1"]),
    "mobilenet_v3_large.yaml": (5_483_032, ["conv1", *(f"stage{i}" for i in range(1, 13)), "conv2", "avgpool1",
                                            "linear1", "dropout1", "linear2"]),
    "mobilenet_v3_small.yaml": (2_542_856, ["conv1", *(f"stage{i}" for i in range(1, 10)), "conv2", "avgpool1",
                                            "linear1", "dropout1", "linear2"]),
    "efficientnet_b0.yaml": (5_288_548, ["conv1", *(f"stage{i}" for i in range(1, 8)), "conv2", "avgpool1",
                                         "dropout1", "linear1"]),
    # timm 1.0.31's convnext_atto, convnext_tiny, convnextv2_tiny; ConvNeXt-T + one CBAM per block (tests/test_modern.py)
    "convnext_atto.yaml": (3_695_520, CONVNEXT_CHILDREN),
    "convnext_tiny.yaml": (28_589_128, CONVNEXT_CHILDREN),
    "convnextv2_tiny.yaml": (28_635_496, CONVNEXT_CHILDREN),
    "convnext_tiny_cbam.yaml": (29_002_318, CONVNEXT_CHILDREN),
    # timm 1.0.31's regnety_016, regnety_032
    "regnety_016.yaml": (11_202_430, ["conv1", "stage1", "stage2", "stage3", "stage4", "avgpool1", "linear1"]),
    "regnety_032.yaml": (19_436_338, ["conv1", "stage1", "stage2", "stage3", "stage4", "avgpool1", "linear1"]),
    # timm 1.0.31's tf_efficientnetv2_b0, tf_efficientnetv2_s
    "efficientnetv2_b0.yaml": (7_139_704, ["conv1", *(f"stage{i}" for i in range(1, 7)), "conv2", "avgpool1", "linear1"]),
    "efficientnetv2_s.yaml": (21_458_488, ["conv1", *(f"stage{i}" for i in range(1, 7)), "conv2", "avgpool1", "linear1"]),
    # timm 1.0.31's byoanet models (DESIGN.md 6c): tiered stems, self-attention as the bottleneck's conv
    "botnet26t.yaml": (12_488_672, TIERED_CHILDREN),
    "halonet26t.yaml": (12_480_288, TIERED_CHILDREN),
    "lambda_resnet26t.yaml": (10_958_272, TIERED_CHILDREN),
    "sebotnet33ts.yaml": (13_701_984, ["conv1", "conv2", "conv3", *(f"stage{i}" for i in range(1, 7)), "conv4",
                                       "avgpool1", "linear1"]),
}
GRAPHS = {"danet_resnet50.yaml", "deeplabv3_resnet50.yaml", "unet.yaml", "unet_cbam.yaml", "yolov8n_cbam.yaml",
          "yolov8n.yaml", "yolo11n.yaml", "yolov5n.yaml", "yolo11n_ca.yaml", "yolov8n_seg.yaml", "yolo11n_seg.yaml",
          "attention_unet.yaml", "unet_leejunhyun.yaml", "hrnet_w18_small.yaml"}
"""Graph specs: tests/test_networks.py checks that they build GraphModules with the reference builds' counts and outputs."""


def test_every_spec_is_a_sequence_or_a_known_graph() -> None:
    assert {path.name for path in SPECS.glob("*.yaml")} == set(SEQUENCES) | GRAPHS


@pytest.mark.parametrize("file", sorted(SEQUENCES))
def test_sequence_specs_still_build_the_same_sequential(file: str) -> None:
    params, children = SEQUENCES[file]
    model = netspec.build(SPECS / file)
    assert type(model) is torch.nn.Sequential
    assert [name for name, _ in model.named_children()] == children
    assert sum(p.numel() for p in model.parameters()) == params


def test_build_accepts_a_path_and_names_children_readably() -> None:
    model = netspec.build(str(SPECS / "resnet50.yaml"))
    assert list(dict(model.named_children())) == [
        "conv1", "maxpool1", "stage1", "stage2", "stage3", "stage4", "avgpool1", "linear1",
    ]
    assert list(dict(model.stage3.named_children())) == [f"block{i}" for i in range(1, 7)]
    block = model.stage2.block1
    assert isinstance(block.body.conv2.conv, torch.nn.Conv2d)
    assert block.body.conv2.conv.stride == (2, 2)  # torchvision v1.5: stride on the 3x3
    assert isinstance(block.shortcut.conv, torch.nn.Conv2d)


def test_se_sits_inside_each_block_before_the_addition() -> None:
    model = netspec.build(SPECS / "se_resnet50.yaml")
    for stage in ("stage1", "stage2", "stage3", "stage4"):
        for block in getattr(model, stage).children():
            assert type(block.attention).__name__ == "SqueezeExcite"
    # official SENet: C=256, r=16 -> 8,464 parameters (DESIGN.md section 6)
    assert sum(p.numel() for p in model.stage1.block1.attention.parameters()) == 8_464


def python_spec() -> netspec.Spec:
    return netspec.Spec(
        name="tiny",
        input=netspec.Input(channels=3, size=(32, 24)),
        layers=[
            Conv(out=16, kernel=3, stride=2),
            MaxPool(kernel=3, stride=2),
            Stage(block="bottleneck", out=32, depth=2, stride=2, attention=SE(reduction=4)),
            Stage(block="basic", out=48, depth=1, groups=1, act="silu"),
            SE(),
            AvgPool(),
            Linear(out=10),
        ],
    )


def test_python_spec_round_trips_through_yaml() -> None:
    spec = python_spec()
    text = spec.to_yaml()
    assert netspec.loads(text) == spec
    assert "attention: {se: {reduction: 4}}" in text or "se: {reduction: 4}" in text
    again = netspec.loads(text)
    assert again.to_yaml() == text


def test_yaml_spec_round_trips_and_equals_the_python_one() -> None:
    spec = netspec.load(SPECS / "se_resnet50.yaml")
    assert netspec.loads(spec.to_yaml()) == spec
    assert spec.layers[2] == Stage(block="bottleneck", out=256, depth=3, attention=SE())
    assert spec.layers[3].attention == SE(reduction=16)


def test_python_models_validate_like_yaml() -> None:
    with pytest.raises(ValueError):
        Conv(out=0)
    with pytest.raises(ValueError):
        Conv(out=True)  # booleans are not numbers
    with pytest.raises(ValueError):
        Stage(out=64, attention="conv")  # not an attention kind
    assert Stage(out=64, attention="se").attention == SE()
    assert Stage(out=64, attention={"se": {"reduction": 8}}).attention == SE(reduction=8)
    spec = netspec.Spec(input={"channels": 3}, layers=["se", {"conv": {"out": 8}}])
    assert spec.layers == [SE(), Conv(out=8)]


def test_python_spec_semantic_errors_have_paths() -> None:
    spec = netspec.Spec(input=netspec.Input(channels=8), layers=[SE(reduction=32)])
    with pytest.raises(netspec.SpecError) as caught:
        netspec.build(spec)
    (problem,) = caught.value.problems
    assert problem.path == ("layers", 0, "se", "reduction")
    assert problem.line is None
    assert "must be <= 8" in problem.message


def test_static_shapes_equal_runtime_shapes_on_a_python_spec() -> None:
    spec = python_spec()
    summary = netspec.summary(spec)
    model = netspec.build(spec).eval()
    x = torch.randn(2, 3, 32, 24)
    with torch.no_grad():
        for row, child in zip(summary.rows, model.children()):
            x = child(x)
            assert tuple(x.shape[1:]) == row.info.shape.dims(), row.name
    assert summary.params == sum(p.numel() for p in model.parameters())


def test_channels_are_inferred_without_input_size() -> None:
    spec = netspec.loads("input: {channels: 3}\nlayers: [conv: {out: 8}, se: {reduction: 2}, avgpool, linear: {out: 5}]")
    summary = netspec.summary(spec)
    assert [row.info.shape.dims() for row in summary.rows] == [(8, None, None), (8, None, None), (8,), (5,)]
    assert summary.macs is None
    model = netspec.build(spec)
    assert model(torch.randn(2, 3, 17, 9)).shape == (2, 5)


def test_defaults_are_inherited_and_overridable() -> None:
    spec = netspec.loads(
        "input: {channels: 3}\ndefaults: {norm: none, act: silu}\n"
        "layers:\n  - conv: {out: 8}\n  - conv: {out: 8, norm: batch, act: relu}\n"
    )
    model = netspec.build(spec)
    first, second = model.conv1, model.conv2
    assert first.conv.bias is not None and not hasattr(first, "norm")  # no norm -> conv bias
    assert isinstance(first.act, torch.nn.SiLU)
    assert second.conv.bias is None and isinstance(second.norm, torch.nn.BatchNorm2d)
    assert isinstance(second.act, torch.nn.ReLU)


def test_resnext_width_and_groups() -> None:
    # ResNeXt-50 32x4d (torchvision resnext50_32x4d: 25,028,904 parameters)
    text = (SPECS / "resnet50.yaml").read_text()
    for out, width in ((256, 128), (512, 256), (1024, 512), (2048, 1024)):
        text = text.replace(f"out: {out}, depth", f"out: {out}, width: {width}, groups: 32, depth")
    assert netspec.summary(netspec.loads(text)).params == 25_028_904


def test_defaults_eps_and_momentum_reach_every_norm() -> None:
    """DESIGN 2b: `defaults: {eps, momentum}` sets every norm of the network (Ultralytics: 0.001, 0.03)."""
    import torch

    spec = netspec.loads("input: {channels: 3}\ndefaults: {eps: 0.001, momentum: 0.03}\n"
                         "layers: [conv: {out: 32}, stage: {out: 32, block: basic}, cbam]")
    norms = [m for m in netspec.build(spec).modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 4 and {(m.eps, m.momentum) for m in norms} == {(0.001, 0.03)}
    plain = netspec.build(netspec.loads("input: {channels: 3}\nlayers: [conv: {out: 32}, cbam]"))
    assert [(m.eps, m.momentum) for m in plain.modules() if isinstance(m, torch.nn.BatchNorm2d)] == [
        (1e-5, 0.1), (1e-5, 0.01)]  # each kind's own: CBAM's spatial BN uses the official 0.01
    assert netspec.loads(spec.to_yaml()) == spec


def test_stage_dilation_is_torchvisions_replace_stride_with_dilation() -> None:
    import torch

    spec = netspec.loads("input: {channels: 3, size: 64}\nlayers:\n- conv: {out: 64, kernel: 7, stride: 2}\n"
                         "- stage: {out: 256, depth: 3, dilation: 2}\n- stage: {out: 512, depth: 2, dilation: 4}\n")
    model = netspec.build(spec)
    dilations = [m.dilation[0] for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert dilations == [1, 2, 2, 2, 4]
    assert tuple(model(torch.randn(1, 3, 64, 64)).shape[1:]) == netspec.summary(spec).output.dims() == (512, 32, 32)
    for bad, where in [("{out: 64, block: basic, dilation: 2}", "dilation"), ("{out: 64, stride: 2, dilation: 2}", "stride")]:
        with pytest.raises(netspec.SpecError) as error:
            netspec.check(netspec.loads(f"input: {{channels: 3}}\nlayers:\n- stage: {bad}\n"))
        assert f"layers[0].stage.{where}:" in str(error.value)
