"""Issue 3 (channel attention): se, eca, cbam, sk against the papers' official code (DESIGN.md section 6)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import netspec
from netspec.layers import CBAM, ECA, SE, SK, Context, Stage
from netspec.shapes import Shape

SPECS = Path(__file__).resolve().parent.parent / "specs"

# Published parameter counts (DESIGN.md section 6): official CBAM, ECANet (adaptive k and released k=3,5,5,7),
# official Caffe SKNet-50.
PUBLISHED_PARAMS = {
    "cbam_resnet50.yaml": 28_089_624,
    "eca_resnet50.yaml": 25_557_118,
    "eca_resnet50_k3557.yaml": 25_557_112,
    "sknet50.yaml": 27_479_784,
}

FEWER = settings(max_examples=max(10, settings.default.max_examples // 3))  # each new shape compiles conv kernels

GATES = ["se", "eca", "cbam"]  # x * sigmoid(...): 0 <= out <= x for x >= 0
KINDS = GATES + ["sk"]


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def static_and_built(layer: netspec.Layer, channels: int) -> tuple[int, int]:
    x = Shape(channels, 5, 3)
    return layer.infer(x, Context()).params, numel(layer.build(x, Context()))


# --- parameter counts: the formulas of DESIGN.md section 6 --------------------------------------------


@given(channels=st.integers(1, 512), data=st.data())
def test_se_params(channels: int, data: st.DataObject) -> None:
    r = data.draw(st.integers(1, channels))
    hidden = channels // r
    assert static_and_built(SE(reduction=r), channels) == (2 * channels * hidden + hidden + channels,) * 2


def eca_kernel(channels: int) -> int:
    t = int(abs((math.log2(channels) + 1) / 2))  # gamma=2, b=1
    return t if t % 2 else t + 1


@given(channels=st.integers(1, 4096))
def test_eca_adaptive_kernel_params(channels: int) -> None:
    k = eca_kernel(channels)
    assert static_and_built(ECA(), channels) == (k, k)


@given(channels=st.integers(1, 512), kernel=st.integers(0, 6).map(lambda n: 2 * n + 1))
def test_eca_explicit_kernel_params(channels: int, kernel: int) -> None:
    assert static_and_built(ECA(kernel=kernel), channels) == (kernel, kernel)


def test_eca_adaptive_kernel_per_resnet_stage() -> None:
    # 256, 512, 1024, 2048 channels -> 5, 5, 5, 7 (the 25,557,118-parameter ECA-ResNet-50)
    assert [ECA().kernel_for(c) for c in (256, 512, 1024, 2048)] == [5, 5, 5, 7]


@given(channels=st.integers(1, 512), data=st.data())
def test_cbam_params(channels: int, data: st.DataObject) -> None:
    r = data.draw(st.integers(1, channels))
    hidden = channels // r
    official = 2 * channels * hidden + hidden + channels + 98 + 2
    assert static_and_built(CBAM(reduction=r), channels) == (official, official)
    timm = 2 * channels * hidden + 98 + 2
    assert static_and_built(CBAM(reduction=r, mlp_bias=False), channels) == (timm, timm)


def test_cbam_params_at_256_channels() -> None:
    assert static_and_built(CBAM(), 256) == (8_564, 8_564)


def sk_params(c: int, *, groups: int, r: int, floor: int, branches: int = 2) -> int:
    """Official SKNet unit: M grouped 3x3 convs + BN, fc C->d without bias + BN, one 1x1 d->M*C without bias."""
    d = max(c // r, floor)
    return branches * (c // groups * 9 * c + 2 * c) + c * d + 2 * d + d * branches * c


@given(data=st.data())
def test_sk_params(data: st.DataObject) -> None:
    groups = data.draw(st.sampled_from([1, 2, 4, 8, 32]))
    channels = groups * data.draw(st.integers(1, 256 // groups))
    r = data.draw(st.integers(1, channels))
    floor, branches = data.draw(st.integers(1, 64)), data.draw(st.integers(2, 3))
    layer = SK(groups=groups, reduction=r, min_hidden=floor, branches=branches)
    expected = sk_params(channels, groups=groups, r=r, floor=floor, branches=branches)
    assert static_and_built(layer, channels) == (expected, expected)


def test_sk_params_at_128_channels() -> None:
    assert static_and_built(SK(), 128) == (22_080, 22_080)


# --- whole networks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("file, expected", sorted(PUBLISHED_PARAMS.items()))
def test_whole_network_matches_published_parameter_count(file: str, expected: int) -> None:
    spec = netspec.load(SPECS / file)
    summary = netspec.summary(spec)
    assert summary.params == expected
    assert summary.output.dims() == (1000,)
    with torch.device("meta"):  # full size, no compute: count parameters and run shapes through
        model = netspec.build(spec)
        assert numel(model) == expected
        assert model(torch.empty(2, 3, 224, 224)).shape == (2, 1000)


def test_sknet50_layout_and_forward() -> None:
    model = netspec.build(SPECS / "sknet50.yaml").eval()
    unit = model.stage2.block1.body.conv2  # the strided 3x3 of the first block of stage 2
    assert type(unit).__name__ == "SelectiveKernel"
    convs = [branch.conv for branch in unit.branches]
    assert [(c.kernel_size, c.dilation, c.padding, c.stride, c.groups) for c in convs] == [
        ((3, 3), (1, 1), (1, 1), (2, 2), 32), ((3, 3), (2, 2), (2, 2), (2, 2), 32),
    ]
    assert unit.fc1.conv.out_channels == 32 and model.stage4.block1.body.conv2.fc1.conv.out_channels == 64
    assert unit.fc1.conv.bias is None and unit.fc2.bias is None
    assert model.stage1.block1.body.conv1.conv.out_channels == 128  # ResNeXt-50 32x4d widths
    with torch.no_grad():
        y = model(torch.randn(1, 3, 64, 64))  # the 224x224 run is on the meta device above
    assert y.shape == (1, 1000) and torch.isfinite(y).all()


def test_cbam_and_eca_sit_in_every_bottleneck_before_the_addition() -> None:
    for file, name in (("cbam_resnet50.yaml", "CBAM"), ("eca_resnet50_k3557.yaml", "EfficientChannelAttention")):
        with torch.device("meta"):
            model = netspec.build(SPECS / file)
        blocks = [block for stage in ("stage1", "stage2", "stage3", "stage4") for block in getattr(model, stage)]
        assert len(blocks) == 16 and all(type(b.attention).__name__ == name for b in blocks)
    kernels = [model.stage1.block1, model.stage2.block1, model.stage3.block1, model.stage4.block1]
    assert [b.attention.conv.kernel_size[0] for b in kernels] == [3, 5, 5, 7]


# --- behaviour -------------------------------------------------------------------------------------------


@st.composite
def feature_maps(draw: st.DrawFn, *, min_batch: int = 1) -> torch.Tensor:
    batch = draw(st.integers(min_batch, 3))
    channels = draw(st.integers(1, 32))
    height = draw(st.sampled_from([1, 2, 3, 5, 7, 9]))
    width = draw(st.sampled_from([1, 3, 4, 6, 11]).filter(lambda w: w != height or height == 1))
    return torch.randn(batch, channels, height, width)


def random_module(kind: str, x: torch.Tensor, data: st.DataObject) -> torch.nn.Module:
    shape = Shape(x.shape[1], x.shape[2], x.shape[3])
    layer = data.draw(netspec.KINDS[kind].strategy(shape))
    assert layer.infer(shape, Context()).shape == shape  # static rule: the shape is kept
    module = layer.build(shape, Context())
    with torch.no_grad():
        for parameter in module.parameters():  # random gates, not the (often symmetric) initial ones
            parameter.normal_(0.0, 1.0)
    return module


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("train", [True, False])
@given(data=st.data())
def test_attention_keeps_the_shape_and_is_finite(kind: str, train: bool, data: st.DataObject) -> None:
    # In train mode BatchNorm over pooled (N, d, 1, 1) features (SK's fuse fc, as the official code has it)
    # needs more than one sample; eval mode takes any batch.
    x = data.draw(feature_maps(min_batch=2 if train else 1))
    module = random_module(kind, x, data).train(train)
    with torch.no_grad():
        y = module(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("kind", GATES)
@given(data=st.data())
def test_gates_scale_the_input_between_zero_and_one(kind: str, data: st.DataObject) -> None:
    x = data.draw(feature_maps(min_batch=2)).abs() + 1e-3
    module = random_module(kind, x, data)
    for train in (True, False):
        with torch.no_grad():
            y = module.train(train)(x)
        assert (y >= 0).all() and (y <= x).all()


def test_eca_is_a_1d_conv_across_pooled_channels() -> None:
    module = ECA(kernel=3).build(Shape(6, 4, 5), Context())
    weights = torch.tensor([0.5, -1.0, 2.0])
    with torch.no_grad():
        module.conv.weight.copy_(weights.view(1, 1, 3))
    x = torch.randn(2, 6, 4, 5)
    pooled = torch.nn.functional.pad(x.mean((2, 3)), (1, 1))  # zero padding (k-1)/2 each side
    logits = sum(weights[i] * pooled[:, i : i + 6] for i in range(3))
    expected = x * torch.sigmoid(logits)[:, :, None, None]
    assert torch.allclose(module(x), expected, atol=1e-6)


def test_cbam_matches_the_official_forward() -> None:
    module = CBAM().build(Shape(32, 6, 5), Context()).eval()
    assert (module.spatial.norm.weight == 0).all()  # official ResNet init: SpatialGate BN weight 0
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_()
        module.spatial.norm.running_mean.normal_()
        module.spatial.norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 32, 6, 5)
    mlp = lambda v: module.channel.fc2(torch.relu(module.channel.fc1(v)))  # noqa: E731
    x1 = x * torch.sigmoid(mlp(x.mean((2, 3), keepdim=True)) + mlp(x.amax((2, 3), keepdim=True)))
    pooled = torch.cat((x1.max(1, keepdim=True)[0], x1.mean(1, keepdim=True)), dim=1)  # official: max, mean
    expected = x1 * torch.sigmoid(module.spatial.norm(module.spatial.conv(pooled)))
    with torch.no_grad():
        assert torch.allclose(module(x), expected, atol=1e-5)


@FEWER
@given(data=st.data())
def test_sk_attention_weights_sum_to_one_over_branches(data: st.DataObject) -> None:
    x = data.draw(feature_maps(min_batch=2))
    module = random_module("sk", x, data).eval()
    with torch.no_grad():
        features, weights = module.select(x)
        y = module(x)
    branches = len(module.branches)
    assert features.shape == (x.shape[0], branches, *x.shape[1:])
    assert weights.shape == (x.shape[0], branches, x.shape[1], 1, 1)
    assert (weights >= 0).all()
    assert torch.allclose(weights.sum(1), torch.ones(()), atol=1e-5)
    assert torch.allclose(y, (features * weights).sum(1), atol=1e-5)


@FEWER
@given(
    block=st.sampled_from(["basic", "bottleneck"]),
    stride=st.sampled_from([1, 2]),
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    channels=st.sampled_from([8, 16]),
)
def test_sk_as_the_block_conv_agrees_with_its_static_shape(
    block: str, stride: int, size: tuple[int, int], channels: int
) -> None:
    stage = Stage(block=block, out=4 * channels, width=channels, depth=2, stride=stride, conv=SK(groups=8, reduction=4))
    spec = netspec.Spec(input=netspec.Input(channels=16, size=size), layers=[stage])
    summary = netspec.summary(spec)
    model = netspec.build(spec).eval()
    assert numel(model) == summary.params
    with torch.no_grad():
        y = model(torch.randn(2, 16, *size))
    assert y.shape[1:] == summary.output.dims()
    replaced = model.stage1.block1.body.conv2 if block == "bottleneck" else model.stage1.block1.body.conv1
    assert type(replaced).__name__ == "SelectiveKernel"


def test_stage_conv_round_trips_through_yaml() -> None:
    text = """\
input: {channels: 3, size: 32}
layers:
  - stage: {out: 64, width: 32, conv: sk}
  - stage: {out: 128, width: 64, stride: 2, conv: {sk: {groups: 16, min_hidden: 8}}, attention: eca}
"""
    spec = netspec.loads(text)
    assert spec.layers[1].conv == SK(groups=16, min_hidden=8)
    assert netspec.loads(spec.to_yaml()) == spec


# --- bad params: located errors, not torch exceptions ----------------------------------------------------


BAD = [
    # (yaml line of the layer, the value the error points at, path of the problem)
    ("  - cbam: {reduction: 300}", "300", ("layers", 1, "cbam", "reduction")),
    ("  - eca: {kernel: 4}", "4", ("layers", 1, "eca", "kernel")),
    ("  - sk: {groups: 48}", "48", ("layers", 1, "sk", "groups")),
    ("  - stage: {out: 512, attention: {cbam: {reduction: 1024}}}", "1024",
     ("layers", 1, "stage", "attention", "cbam", "reduction")),
    ("  - stage: {out: 512, attention: {eca: {kernel: 6}}}", "6", ("layers", 1, "stage", "attention", "eca", "kernel")),
    ("  - stage: {out: 512, width: 96, conv: {sk: {groups: 64}}}", "64",
     ("layers", 1, "stage", "conv", "sk", "groups")),
    ("  - stage: {out: 512, groups: 2, conv: sk}", "2", ("layers", 1, "stage", "groups")),
]


@pytest.mark.parametrize("line, value, path", BAD)
def test_bad_params_are_located(line: str, value: str, path: tuple[object, ...]) -> None:
    text = f"input: {{channels: 3, size: 32}}\nlayers:\n  - conv: {{out: 256}}\n{line}\n"
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(netspec.loads(text, name="x.yaml"))  # shape problems surface when shapes are inferred
    problems = [p for p in caught.value.problems if p.path == path]
    assert len(problems) == 1, caught.value
    problem = problems[0]
    assert (problem.file, problem.line, problem.column) == ("x.yaml", 4, line.rindex(" " + value) + 2)
    assert str(problem).startswith(f"x.yaml:4:{problem.column}: ")


def test_a_kind_that_cannot_be_a_block_conv_is_named() -> None:
    text = "input: {channels: 3, size: 32}\nlayers:\n  - stage: {out: 64, conv: se}\n"
    with pytest.raises(netspec.SpecError) as caught:
        netspec.loads(text, name="x.yaml")
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (3, text.splitlines()[2].index("se}") + 1)
    assert "'se'" in problem.message and "sk" in problem.message
