"""Issue 13: coord, gc, bam, triplet, simam, ese, splat, ge and eca's circular padding against their official code
(DESIGN.md section 6b): parameter formulas, behaviour, and outputs equal to the official modules (tests/
official_attention.py) with the same random weights, copied by state-dict order, in train and eval mode."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import official_attention as official
import netspec
from netspec.layers import BAM, ECA, ESE, GC, GE, Context, Coord, SimAM, Splat, Stage, Triplet
from netspec.shapes import Shape

SPECS = Path(__file__).resolve().parent.parent / "specs"

PUBLISHED_PARAMS = {  # the official builds' counts (DESIGN.md section 6b)
    "gc_resnet50.yaml": 28_078_773,
    "bam_resnet50.yaml": 25_915_099,
    "triplet_resnet50.yaml": 25_561_832,
    "resnest50.yaml": 27_483_240,
    "mobilenet_v2_ca.yaml": 3_950_648,  # houqb/CoordAttention mbv2_ca.py
}

FEWER = settings(max_examples=max(10, settings.default.max_examples // 3))


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def static_and_built(layer: netspec.Layer, channels: int) -> tuple[int, int]:
    x = Shape(channels, 5, 3)
    return layer.infer(x, Context()).params, numel(layer.build(x, Context()))


# --- parameter counts: the formulas of the issue, over random C ----------------------------------------


@given(channels=st.integers(1, 1024), reduction=st.integers(1, 64), floor=st.integers(1, 16))
def test_coord_params(channels: int, reduction: int, floor: int) -> None:
    mip = max(floor, channels // reduction)
    official_count = 3 * channels * mip + 3 * mip + 2 * channels
    assert static_and_built(Coord(reduction=reduction, min_hidden=floor), channels) == (official_count,) * 2
    no_bias = 3 * channels * mip + 2 * mip  # timm's CoordAttn: convs without bias
    assert static_and_built(Coord(reduction=reduction, min_hidden=floor, bias=False), channels) == (no_bias,) * 2


def test_coord_and_ge_take_few_channels_as_the_official_code() -> None:
    # mip = max(8, 16 // 32) = 8 (MobileNetV2's 16-channel stage), rd = max(1, round(4 / 16)) = 1
    spec = netspec.loads("input: {channels: 16, size: 8}\nlayers: [coord, ge, {conv: {out: 4}}, ge]\n")
    rows = netspec.summary(spec).rows
    assert [row.info.params for row in rows] == [3 * 16 * 8 + 3 * 8 + 2 * 16, 2 * 16 * 1 + 1 + 16, 16 * 9 * 4 + 8, 2 * 4 + 1 + 4]


def test_coord_params_at_64_channels() -> None:
    assert static_and_built(Coord(), 64) == (1_688, 1_688)  # official: mip = max(8, 64 // 32) = 8
    assert static_and_built(Coord(reduction=16, bias=False), 64) == (1_552, 1_552)  # timm's CoordAttn


@given(channels=st.integers(16, 2048), data=st.data())
def test_gc_params(channels: int, data: st.DataObject) -> None:
    reduction = data.draw(st.integers(1, channels))
    p = int(channels / reduction)
    transform = 2 * channels * p + 3 * p + channels  # 1x1 C->P + bias, LayerNorm([P,1,1]), 1x1 P->C + bias
    assert static_and_built(GC(reduction=reduction), channels) == (2 * channels * p + 2 * channels + 3 * p + 1,) * 2
    assert static_and_built(GC(reduction=reduction, fusion="mul"), channels) == (channels + 1 + transform,) * 2
    assert static_and_built(GC(reduction=reduction, fusion="both"), channels) == (channels + 1 + 2 * transform,) * 2
    assert static_and_built(GC(reduction=reduction, pool="avg"), channels) == (transform,) * 2


def test_gc_params_at_256_channels() -> None:
    assert static_and_built(GC(), 256) == (8_753, 8_753)


@given(channels=st.integers(16, 2048), data=st.data())
def test_bam_params(channels: int, data: st.DataObject) -> None:
    reduction = data.draw(st.integers(1, channels))
    r = channels // reduction
    expected = 3 * channels * r + 18 * r * r + 13 * r + channels + 1
    assert static_and_built(BAM(reduction=reduction), channels) == (expected, expected)
    convs = data.draw(st.integers(0, 4))
    expected = 3 * channels * r + convs * 9 * r * r + (7 + 3 * convs) * r + channels + 1
    assert static_and_built(BAM(reduction=reduction, convs=convs, combine="sum"), channels) == (expected, expected)


def test_bam_params_at_256_channels() -> None:
    assert static_and_built(BAM(), 256) == (17_361, 17_361)


@given(channels=st.integers(1, 2048), kernel=st.sampled_from([1, 3, 5, 7, 9]))
def test_triplet_params(channels: int, kernel: int) -> None:
    assert static_and_built(Triplet(), channels) == (300, 300)
    assert static_and_built(Triplet(kernel=kernel), channels) == (3 * (2 * kernel**2 + 2),) * 2
    assert static_and_built(Triplet(spatial=False), channels) == (200, 200)


@given(channels=st.integers(1, 2048))
def test_simam_and_ese_params(channels: int) -> None:
    assert static_and_built(SimAM(), channels) == (0, 0)
    assert static_and_built(ESE(), channels) == (channels * channels + channels,) * 2


def splat_params(c_in: int, c_out: int, *, radix: int, groups: int, reduction: int, floor: int) -> int:
    """SplAtConv2d: conv (no bias) + BN over radix*C, fc1 C->inter with bias + BN, fc2 inter->radix*C with bias."""
    inter = max(c_in * radix // reduction, floor)
    conv = c_in // (groups * radix) * 9 * c_out * radix + 2 * c_out * radix
    return conv + (c_out // groups * inter + inter) + 2 * inter + (inter // groups * c_out * radix + c_out * radix)


@given(data=st.data())
def test_splat_params(data: st.DataObject) -> None:
    radix, groups = data.draw(st.sampled_from([1, 2, 4])), data.draw(st.sampled_from([1, 2]))
    channels = radix * groups * data.draw(st.integers(1, 64))
    reduction = data.draw(st.integers(1, 8))
    layer = Splat(radix=radix, groups=groups, reduction=reduction, min_hidden=32)
    if layer.hidden(channels) % groups:
        layer = layer.model_copy(update={"reduction": 1})
        reduction = 1
    expected = splat_params(channels, channels, radix=radix, groups=groups, reduction=reduction, floor=32)
    assert static_and_built(layer, channels) == (expected, expected)


def test_splat_params_at_64_channels() -> None:
    # radix 2: inter = max(64 * 2 // 4, 32) = 32; conv 32*9*128 = 36,864, BN 256, fc1 2,080, BN 64, fc2 4,224
    assert static_and_built(Splat(), 64) == (43_488, 43_488)


@given(channels=st.integers(1, 2048), data=st.data())
def test_ge_params(channels: int, data: st.DataObject) -> None:
    reduction = data.draw(st.integers(1, channels))
    rd = official.make_divisible(channels * (1 / reduction), 1, round_limit=0.0)  # timm's rounding
    assert static_and_built(GE(reduction=reduction), channels) == (2 * channels * rd + rd + channels,) * 2
    extent = data.draw(st.sampled_from([2, 4, 8]))
    gather = int(math.log2(extent)) * 11 * channels  # depthwise 3x3 without bias + BN per step
    layer = GE(reduction=reduction, extent=extent, extra_params=True)
    assert static_and_built(layer, channels) == (gather + 2 * channels * rd + rd + channels,) * 2
    assert static_and_built(GE(extent=extent, mlp=False), channels) == (0, 0)


@given(channels=st.integers(1, 4096), kernel=st.integers(0, 4).map(lambda n: 2 * n + 1))
def test_eca_circular_params(channels: int, kernel: int) -> None:
    layer = ECA(kernel=kernel, circular=True)
    if (kernel - 1) // 2 <= channels:
        assert static_and_built(layer, channels) == (kernel, kernel)


# --- whole networks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("file, expected", sorted(PUBLISHED_PARAMS.items()))
def test_whole_network_matches_the_official_count(file: str, expected: int) -> None:
    spec = netspec.load(SPECS / file)
    summary = netspec.summary(spec)
    assert summary.params == expected
    with torch.device("meta"):
        model = netspec.build(spec)
        assert numel(model) == expected
        assert model(torch.empty(2, 3, 224, 224)).shape == (2, 1000)


def test_network_layouts() -> None:
    with torch.device("meta"):
        gc = netspec.build(SPECS / "gc_resnet50.yaml")
        bam = netspec.build(SPECS / "bam_resnet50.yaml")
        resnest = netspec.build(SPECS / "resnest50.yaml")
    assert isinstance(gc.stage1.block1.attention, torch.nn.Identity)
    assert all(type(block.attention).__name__ == "GlobalContext" for s in (gc.stage2, gc.stage3, gc.stage4) for block in s)
    assert [type(child).__name__ for child in bam.children()].count("BottleneckAttention") == 3
    assert [name for name, child in bam.named_children() if type(child).__name__ == "BottleneckAttention"] == [
        "bam1", "bam2", "bam3"]
    first, second = resnest.stage2.block1, resnest.stage2.block2
    assert type(first.body.conv2).__name__ == "SplitAttention" and first.body.conv2.conv.stride == (1, 1)
    assert isinstance(first.body.avd, torch.nn.AvgPool2d) and first.body.avd.stride == 2
    assert not hasattr(second.body, "avd") and not hasattr(resnest.stage1.block1.body, "avd")
    assert isinstance(first.shortcut.pool, torch.nn.AvgPool2d) and first.shortcut.pool.ceil_mode
    assert first.shortcut.conv.stride == (1, 1)
    assert not hasattr(resnest.stage1.block1.shortcut, "pool")  # stride 1: a plain 1x1 conv + BN


# --- behaviour --------------------------------------------------------------------------------------------


def test_simam_energy_on_a_hand_made_map() -> None:
    # one channel, 2x2: [[0, 0], [0, 4]]; mean 1, d = (1, 1, 1, 9), sum(d) / (HW - 1) = 12 / 3 = 4
    x = torch.tensor([[[[0.0, 0.0], [0.0, 4.0]]]])
    for e_lambda in (1e-4, 0.1):
        module = SimAM(e_lambda=e_lambda).build(Shape(1, 2, 2), Context())
        denominator = 4 * (4 + e_lambda)
        expected_energy = torch.tensor([[[[1, 1], [1, 9]]]]) / denominator + 0.5
        torch.testing.assert_close(module.energy(x), expected_energy)
        expected = torch.tensor([[[[0.0, 0.0], [0.0, 4.0 * (1 / (1 + math.exp(-(9 / denominator + 0.5))))]]]])
        torch.testing.assert_close(module(x), expected)
    # the distinctive neuron (far from its channel's mean) gets the highest weight
    y = torch.tensor([[[[1.0, 1.0], [1.0, 5.0]]]])
    weights = SimAM().build(Shape(1, 2, 2), Context())(y) / y
    assert weights[0, 0, 1, 1] > weights[0, 0, 0, 0]


def test_simam_needs_more_than_one_position() -> None:
    with pytest.raises(netspec.SpecError, match="larger than 1x1"):
        netspec.check(netspec.loads("input: {channels: 3, size: 1}\nlayers: [simam]\n"))


@pytest.mark.parametrize("size", [(3, 7), (8, 2), (1, 5)])
def test_triplet_keeps_h_different_from_w(size: tuple[int, int]) -> None:
    x = torch.randn(2, 5, *size)
    layer = Triplet()
    assert layer.infer(Shape(5, *size), Context()).shape == Shape(5, *size)
    ours = layer.build(Shape(5, *size), Context())
    theirs = official.TripletAttention(5)
    randomize(theirs)
    copy_by_order(theirs, ours)
    for train in (True, False):
        with torch.no_grad():
            torch.testing.assert_close(ours.train(train)(x), theirs.train(train)(x))
    # each rotation pools over the right axis: the (C, W) branch sees H as channels, the (H, C) branch W
    cw_pooled = ours.cw.conv(torch.cat((x.amax(2, keepdim=True), x.mean(2, keepdim=True)), 2).transpose(1, 2))
    assert cw_pooled.shape == (2, 1, 5, size[1])


def test_triplet_zero_initialises_the_spatial_branch_as_the_official_resnet() -> None:
    ours = Triplet().build(Shape(8, 4, 4), Context())
    theirs = official.TripletAttention(8)
    official.triplet_resnet_init(theirs)
    official_gammas = [value.item() for key, value in theirs.state_dict().items() if key.endswith("bn.weight")]
    assert official_gammas == [1.0, 1.0, 0.0]  # ChannelGateH, ChannelGateW, SpatialGate
    assert [branch.bn.weight.item() for branch in (ours.cw, ours.hc, ours.hw)] == official_gammas


@FEWER
@given(channels=st.integers(1, 24), size=st.tuples(st.integers(1, 7), st.integers(1, 7)), data=st.data())
def test_gc_attention_weights_sum_to_one_over_positions(channels: int, size: tuple[int, int], data: st.DataObject) -> None:
    module = GC(reduction=1).build(Shape(channels, *size), Context()).eval()
    randomize(module)
    x = torch.randn(2, channels, *size)
    with torch.no_grad():
        weights = module.weights(x)
        context = module.context(x)
    assert weights.shape == (2, size[0] * size[1], 1)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 1))
    torch.testing.assert_close(context, (x.flatten(2) * weights.transpose(1, 2)).sum(-1)[..., None, None])


def test_gc_starts_as_the_identity() -> None:
    module = GC().build(Shape(32, 5, 4), Context())  # the transform's last conv is zero-initialised
    x = torch.randn(2, 32, 5, 4)
    torch.testing.assert_close(module(x), x)


@FEWER
@given(radix=st.sampled_from([1, 2, 4]), groups=st.sampled_from([1, 2]), multiple=st.integers(1, 4))
def test_splat_radix_softmax_sums_to_one(radix: int, groups: int, multiple: int) -> None:
    channels = radix * groups * multiple
    module = Splat(radix=radix, groups=groups, min_hidden=2 * groups).build(Shape(channels, 5, 4), Context()).eval()
    randomize(module)
    x = torch.randn(2, channels, 5, 4)
    with torch.no_grad():
        parts = module.split(x)
        weights = module.weights(parts)
        y = module(x)
    assert len(parts) == radix and weights.shape == (2, radix, channels)
    assert ((weights > 0) & (weights < 1)).all()
    if radix > 1:
        torch.testing.assert_close(weights.sum(1), torch.ones(2, channels))
    expected = sum(weights[:, i, :, None, None] * parts[i] for i in range(radix))
    torch.testing.assert_close(y, expected)


def test_bam_product_and_sum_differ() -> None:
    x = torch.randn(2, 32, 6, 6)
    product = BAM().build(Shape(32, 6, 6), Context()).eval()
    randomize(product)
    summed = BAM(combine="sum").build(Shape(32, 6, 6), Context()).eval()
    summed.load_state_dict(product.state_dict())
    with torch.no_grad():
        assert not torch.allclose(product(x), summed(x))
        assert ((product(x) / x >= 1) & (product(x) / x <= 2)).all()  # the gate 1 + sigmoid lies in [1, 2]


def test_ge_upsamples_a_gathered_map_back() -> None:
    module = GE(extent=4).build(Shape(16, 9, 7), Context()).eval()
    x = torch.randn(2, 16, 9, 7)
    with torch.no_grad():
        assert module.gathered(x).shape == (2, 16, 3, 2)
        assert module(x).shape == x.shape


BAD = [
    ("  - ge: {extent: 3}", "3", ("layers", 1, "ge", "extent")),
    ("  - ge: {extra_params: true}", "true", ("layers", 1, "ge", "extra_params")),
    ("  - gc: {reduction: 512}", "512", ("layers", 1, "gc", "reduction")),
    ("  - bam: {reduction: 300}", "300", ("layers", 1, "bam", "reduction")),
    ("  - splat: {radix: 3}", "3", ("layers", 1, "splat", "groups")),
    ("  - splat: {radix: 9}", "9", ("layers", 1, "splat", "radix")),
    ("  - bam: {combine: mean}", "mean", ("layers", 1, "bam", "combine")),
    ("  - simam: {e_lambda: 0.0}", "0.0", ("layers", 1, "simam", "e_lambda")),
    ("  - stage: {out: 256, conv: {splat: {groups: 3}}}", "3", ("layers", 1, "stage", "conv", "splat", "groups")),
    ("  - stage: {out: 256, avd: 1}", "1", ("layers", 1, "stage", "avd")),
]


@pytest.mark.parametrize("line, value, path", BAD)
def test_bad_params_are_located(line: str, value: str, path: tuple[object, ...]) -> None:
    text = f"input: {{channels: 3, size: 32}}\nlayers:\n  - conv: {{out: 256}}\n{line}\n"
    with pytest.raises(netspec.SpecError) as caught:
        netspec.check(netspec.loads(text, name="x.yaml"))
    problems = [p for p in caught.value.problems if p.path == path]
    assert len(problems) == 1, caught.value
    assert problems[0].line == 4


def test_eca_circular_padding_that_wraps_twice_is_an_error() -> None:
    with pytest.raises(netspec.SpecError, match="wraps around"):
        netspec.check(netspec.loads("input: {channels: 2, size: 4}\nlayers:\n  - eca: {kernel: 7, circular: true}\n"))


def test_new_kinds_round_trip_and_fill_a_stage() -> None:
    text = """\
input: {channels: 3, size: 32}
layers:
  - conv: {out: 64}
  - coord: {reduction: 16, bias: false}
  - gc: {fusion: mul, reduction: 8}
  - bam: {combine: sum}
  - triplet: {spatial: false}
  - simam: {e_lambda: 0.1}
  - ese
  - ge: {extent: 2, extra_params: true}
  - eca: {circular: true}
  - splat: {radix: 4}
  - stage: {out: 128, stride: 2, conv: splat, avd: true, avg_down: true, attention: coord}
  - stage: {out: 128, attention: {ge: {extent: 4}}}
"""
    spec = netspec.loads(text)
    assert netspec.loads(spec.to_yaml()) == spec
    summary = netspec.summary(spec)
    model = netspec.build(spec).eval()
    assert numel(model) == summary.params
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 128, 16, 16)


# --- faithfulness: the official modules with the same weights ------------------------------------------------


def randomize(module: torch.nn.Module) -> None:
    """Random weights and BN statistics, so that no symmetry of the initial values hides a difference."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5)


def copy_by_order(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Copy ``source``'s state dict into ``target`` entry by entry, in order (the names differ, the shapes not)."""
    theirs, ours = list(source.state_dict().values()), target.state_dict()
    assert len(theirs) == len(ours), (len(theirs), len(ours))
    for (name, mine), value in zip(ours.items(), theirs):
        assert mine.shape == value.shape, name
        mine.copy_(value)


def assert_same_function(ours: torch.nn.Module, theirs: torch.nn.Module, x: torch.Tensor, *, train: bool = True) -> None:
    randomize(theirs)
    copy_by_order(theirs, ours)
    for mode in (True, False) if train else (False,):
        with torch.no_grad():
            torch.testing.assert_close(ours.train(mode)(x), theirs.train(mode)(x.clone()), rtol=1e-5, atol=1e-5)


def build(layer: netspec.Layer, x: torch.Tensor) -> torch.nn.Module:
    return layer.build(Shape(*x.shape[1:]), Context())


def test_coord_matches_the_official_code() -> None:
    for channels in (24, 512):  # mip 8 (the floor) and 16
        x = torch.randn(2, channels, 5, 7)
        assert_same_function(build(Coord(), x), official.CoordAtt(channels, channels), x)


@pytest.mark.parametrize("pool, fusion, official_pool, fusions", [
    ("attention", "add", "att", ["channel_add"]),
    ("attention", "mul", "att", ["channel_mul"]),
    ("attention", "both", "att", ["channel_add", "channel_mul"]),
    ("avg", "add", "avg", ["channel_add"]),
])
def test_gc_matches_the_official_code(pool: str, fusion: str, official_pool: str, fusions: list[str]) -> None:
    x = torch.randn(2, 64, 5, 7)
    theirs = official.ContextBlock2d(64, 64 // 16, official_pool, fusions)
    assert_same_function(build(GC(pool=pool, fusion=fusion), x), theirs, x)  # type: ignore[arg-type]


@pytest.mark.parametrize("combine", ["product", "sum"])
def test_bam_matches_the_official_code(combine: str) -> None:
    x = torch.randn(3, 64, 9, 9)  # square: the official channel pool is an H x H window
    theirs = official.BAM(64, paper_sum=combine == "sum")
    assert_same_function(build(BAM(combine=combine), x), theirs, x)  # type: ignore[arg-type]


def test_bam_pools_globally_where_the_official_window_is_h_by_h() -> None:
    x = torch.randn(2, 32, 4, 8)  # the official 4x4 windows would give a 1x2 pooled map here
    ours = build(BAM(), x).eval()
    randomize(ours)
    gate = ours.channel_att
    with torch.no_grad():
        expected = gate.fc2(torch.relu(gate.bn(gate.fc1(x.mean((2, 3))))))
        torch.testing.assert_close(gate(x), expected[:, :, None, None])
        assert ours(x).shape == x.shape


@pytest.mark.parametrize("spatial", [True, False])
def test_triplet_matches_the_official_code(spatial: bool) -> None:
    x = torch.randn(2, 6, 5, 9)
    assert_same_function(build(Triplet(spatial=spatial), x), official.TripletAttention(6, no_spatial=not spatial), x)


@pytest.mark.parametrize("e_lambda", [1e-4, 0.1])
def test_simam_matches_the_official_code(e_lambda: float) -> None:
    x = torch.randn(2, 6, 5, 9)
    assert_same_function(build(SimAM(e_lambda=e_lambda), x), official.simam_module(6, e_lambda=e_lambda), x)


def test_ese_matches_the_official_code() -> None:
    x = torch.randn(2, 16, 5, 3)
    assert_same_function(build(ESE(), x), official.eSEModule(16), x)


@pytest.mark.parametrize("radix, groups, channels", [(2, 1, 64), (2, 2, 64), (4, 1, 32), (1, 1, 48)])
def test_splat_matches_the_official_code(radix: int, groups: int, channels: int) -> None:
    x = torch.randn(2, channels, 6, 5)
    theirs = official.SplAtConv2d(channels, channels, 3, padding=1, groups=groups, bias=False, radix=radix,
                                  norm_layer=torch.nn.BatchNorm2d)
    assert_same_function(build(Splat(radix=radix, groups=groups), x), theirs, x)


@pytest.mark.parametrize("extent, extra_params, mlp", [
    (0, False, True), (2, False, True), (4, False, False), (2, True, True), (8, True, False),
])
def test_ge_matches_timms_gather_excite(extent: int, extra_params: bool, mlp: bool) -> None:
    x = torch.randn(2, 24, 9, 7)
    theirs = official.GatherExcite(24, extent=extent, extra_params=extra_params, use_mlp=mlp)
    assert_same_function(build(GE(extent=extent, extra_params=extra_params, mlp=mlp), x), theirs, x)


@pytest.mark.parametrize("channels, kernel", [(16, 3), (256, 5), (6, 5)])
def test_eca_circular_matches_timms_ceca(channels: int, kernel: int) -> None:
    x = torch.randn(2, channels, 4, 3)
    ours = build(ECA(kernel=kernel, circular=True), x)
    theirs = official.CecaModule(kernel_size=kernel)
    assert_same_function(ours, theirs, x, train=False)
    zeros = build(ECA(kernel=kernel), x)
    zeros.load_state_dict(ours.state_dict())
    with torch.no_grad():
        assert not torch.allclose(zeros(x), ours(x))  # the end channels see the other end, not zeros


def test_resnest_block_matches_the_official_bottleneck() -> None:
    # the first block of a ResNeSt stage: stride 2 by avd, avg-down shortcut, split attention radix 2
    stage = Stage(out=128, stride=2, conv=Splat(), avd=True, avg_down=True)
    x = torch.randn(2, 64, 9, 7)  # odd sizes: ceil mode of the shortcut's pool
    ours = stage.build(Shape(64, 9, 7), Context()).block1
    theirs = official.ResNeStBottleneck(64, 32, stride=2, downsample=official.resnest_downsample(64, 128, 2),
                                        radix=2, avd=True, is_first=True)
    assert_same_function(ours, theirs, x)
    # a later block of the stage (ResNet._make_layer builds it with is_first=False): no avd, identity shortcut
    later = Stage(out=128, depth=2, stride=2, conv=Splat(), avd=True, avg_down=True).build(Shape(64, 9, 7), Context())
    assert_same_function(later.block2, official.ResNeStBottleneck(128, 32, radix=2, avd=True),
                         torch.randn(2, 128, 5, 4))


def test_simam_at_the_official_place_matches_the_official_bottleneck() -> None:
    stage = Stage(out=64, stride=2, attention=SimAM(e_lambda=0.1), attention_at="conv")
    ours = stage.build(Shape(32, 9, 7), Context()).block1
    assert isinstance(ours.attention, torch.nn.Identity)
    assert [name for name, _ in ours.body.conv2.named_children()] == ["conv", "attention", "norm", "act"]
    downsample = torch.nn.Sequential(torch.nn.Conv2d(32, 64, 1, stride=2, bias=False), torch.nn.BatchNorm2d(64))
    theirs = official.SimAMBottleneck(32, 16, stride=2, downsample=downsample, e_lambda=0.1)
    assert_same_function(ours, theirs, torch.randn(2, 32, 9, 7))


@pytest.mark.parametrize("attention", [Coord(reduction=2), GC(reduction=2), Triplet(), Splat()])
@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_attention_at_the_conv_counts_and_runs(attention: netspec.Layer, block: str) -> None:
    stage = Stage(block=block, out=64, depth=2, stride=2, attention=attention, attention_at="conv")
    spec = netspec.Spec(input=netspec.Input(channels=32, size=(9, 7)), layers=[stage])
    summary = netspec.summary(spec)
    model = netspec.build(spec).eval()
    assert numel(model) == summary.params
    mid = 16 if block == "bottleneck" else 64  # the attention sits at the 3x3 conv's width
    assert summary.params == netspec.summary(spec.model_copy(update={"layers": [
        stage.model_copy(update={"attention": None})]})).params + 2 * attention.infer(Shape(mid, 5, 4), Context()).params
    with torch.no_grad():
        assert model(torch.randn(2, 32, 9, 7)).shape == (2, 64, 5, 4)
