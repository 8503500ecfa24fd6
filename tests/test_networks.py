"""Issue 11 (graphs): whole networks as graph specs, against their reference builds, and the YOLOv8 kinds.

Each network's exact parameter count is the reference build's (DESIGN.md section 6b), and each computes the
same function: the reference (``network_references``, written in the official layout) gets random weights, they
are copied into netspec's model by state-dict order, and the outputs are compared in eval mode.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import netspec
import network_references as reference

SPECS = Path(__file__).resolve().parent.parent / "specs"

PUBLISHED = {
    "danet_resnet50.yaml": 47_462_651,  # official DANet, 19 classes, OS8, both auxiliary heads
    "deeplabv3_resnet50.yaml": 39_638_869,  # torchvision deeplabv3_resnet50(num_classes=21, aux_loss=False)
    "unet.yaml": 31_037_698,  # milesial/Pytorch-UNet UNet(3, 2, bilinear=False)
    "yolov8n_cbam.yaml": 3_157_200 + 8_564,  # Ultralytics YOLOv8n (with Detect) + CBAM at 256 channels
}


def cbam_params(channels: int, reduction: int = 16) -> int:
    """DESIGN.md section 6: 2C^2/r + C/r + C + 98 + 2."""
    return 2 * channels * channels // reduction + channels // reduction + channels + 98 + 2


def numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def with_size(spec: netspec.Spec, size: int) -> netspec.Spec:
    return spec.model_copy(update={"input": spec.input.model_copy(update={"size": (size, size)})})


def shapes(spec: netspec.Spec) -> dict[str, tuple[int | None, ...]]:
    return {row.name: row.info.shape.dims() for row in netspec.summary(spec).rows}


@functools.lru_cache(maxsize=None)
def built(file: str) -> torch.nn.Module:
    """One build of ``specs/file`` shared by the tests that only read the model (building DANet takes seconds)."""
    return netspec.build(SPECS / file)


@pytest.fixture(scope="module", autouse=True)
def _free_the_shared_builds() -> Iterator[None]:
    yield
    built.cache_clear()  # hundreds of MB of weights: not kept for the rest of the session


@pytest.mark.parametrize("file, expected", sorted(PUBLISHED.items()))
def test_network_has_the_reference_parameter_count(file: str, expected: int) -> None:
    spec = netspec.load(SPECS / file)
    assert netspec.summary(spec).params == expected
    model = built(file)
    assert isinstance(model, torch.fx.GraphModule)
    assert numel(model) == expected


def test_unet_cbam_is_unet_plus_four_cbams_on_the_skips() -> None:
    spec = netspec.load(SPECS / "unet_cbam.yaml")
    expected = PUBLISHED["unet.yaml"] + sum(cbam_params(c) for c in (64, 128, 256, 512))
    assert expected == 31_082_638
    assert netspec.summary(spec).params == expected
    model = netspec.build(spec)
    assert numel(model) == expected
    gated = {row.name: row.inputs for row in netspec.summary(spec).rows if row.kind == "cbam"}
    assert gated == {"x4_att": ("x4",), "x3_att": ("x3",), "x2_att": ("x2",), "x1_att": ("x1",)}
    concats = [row.inputs for row in netspec.summary(spec).rows if row.kind == "concat"]
    assert concats == [("x4_att", "up1"), ("x3_att", "up2"), ("x2_att", "up3"), ("x1_att", "up4")]  # skip first
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 2, 32, 32)


def test_output_shapes() -> None:
    yolo = shapes(netspec.load(SPECS / "yolov8n_cbam.yaml"))  # at its 640 x 640
    assert (yolo["p3"], yolo["p4"], yolo["p5"]) == ((64, 80, 80), (128, 40, 40), (256, 20, 20))
    danet = shapes(netspec.load(SPECS / "danet_resnet50.yaml"))  # 512 x 512, output stride 8
    assert danet["c4"] == (2048, 64, 64)
    assert danet["out"] == danet["sa_out"] == danet["sc_out"] == (19, 512, 512)
    deeplab = shapes(netspec.load(SPECS / "deeplabv3_resnet50.yaml"))
    assert deeplab["c5"] == (2048, 64, 64) and deeplab["aspp"] == (1280, 64, 64) and deeplab["out"] == (21, 512, 512)
    assert shapes(netspec.load(SPECS / "unet.yaml"))["x5"] == (1024, 16, 16)


# --- the same function as the reference builds ------------------------------------------------------------

REFERENCES = {
    "danet_resnet50.yaml": (reference.DANet, 32),  # c4 at 4 x 4: PAM over 16 positions
    "deeplabv3_resnet50.yaml": (reference.DeepLabV3, 32),
    "unet.yaml": (reference.UNet, 32),
}


def compare(ours: torch.nn.Module, theirs: torch.nn.Module, size: int, batch: int = 1) -> None:
    reference.randomize(theirs)
    reference.copy_by_order(theirs, ours)
    ours, theirs = ours.double().eval(), theirs.double().eval()
    x = torch.randn(batch, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        assert b.abs().max() > 1e-3  # the weights reach the output: the comparison can fail
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("file", sorted(REFERENCES))
def test_network_computes_what_the_reference_computes(file: str) -> None:
    build, size = REFERENCES[file]
    compare(netspec.build(SPECS / file), build(), size)


def without_cbam(text: str) -> str:
    """specs/yolov8n_cbam.yaml with its `cbam` entry deleted and the one reference to it pointed at `sppf`."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("- cbam"))
    assert lines[start + 1].strip() == "name: c5"
    del lines[start:start + 2]
    edited = "".join(lines)
    assert edited.count("from: [p4_down, c5]") == 1 and edited.count("c5") == 1 + edited.count("c5_up")
    return edited.replace("from: [p4_down, c5]", "from: [p4_down, sppf]")


def test_removing_the_cbam_gives_yolov8n_without_renumbering_anything() -> None:
    text = (SPECS / "yolov8n_cbam.yaml").read_text()
    plain = netspec.loads(without_cbam(text))
    assert netspec.summary(plain).params == 3_157_200
    with_cbam = {row.name: row for row in netspec.summary(netspec.loads(text)).rows}
    rows = netspec.summary(plain).rows
    assert [row.name for row in rows] == [name for name in with_cbam if name != "c5"]
    for row in rows:  # every other entry: same params, same shape, same inputs (c5 read as sppf)
        other = with_cbam[row.name]
        assert (row.info.params, row.info.shape) == (other.info.params, other.info.shape), row.name
        assert row.inputs == tuple("sppf" if name == "c5" else name for name in other.inputs), row.name


@pytest.mark.slow
def test_yolov8n_computes_what_ultralytics_computes() -> None:
    """Ultralytics' yolov8n (BN eps 0.001, momentum 0.03, SiLU) up to P3, P4, P5 (the whole detector, Detect
    included, is compared in tests/test_yolo.py)."""
    text = without_cbam((SPECS / "yolov8n_cbam.yaml").read_text())
    model = netspec.build(netspec.loads(text.split("  # head")[0] + "outputs: [p3, p4, p5]\n"))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all((m.eps, m.momentum) == (0.001, 0.03) for m in norms)
    assert all(isinstance(m.act, torch.nn.SiLU) for m in model.modules() if hasattr(m, "norm"))
    compare(model, reference.YOLOv8Neck(), 64)


def test_yolov8n_cbam_reads_the_cbam_by_name() -> None:
    spec = netspec.load(SPECS / "yolov8n_cbam.yaml")
    rows = {row.name: row for row in netspec.summary(spec).rows}
    assert rows["c5"].kind == "cbam" and rows["c5"].inputs == ("sppf",) and rows["c5"].info.params == cbam_params(256)
    assert rows["c5_up"].inputs == ("c5",) and rows["p5_in"].inputs == ("p4_down", "c5")
    assert rows["detect"].inputs == ("p3", "p4", "p5")
    model = netspec.build(spec)
    with torch.no_grad():
        p3, p4, p5 = model(torch.randn(1, 3, 64, 64))["feats"]
    assert (p3.shape, p4.shape, p5.shape) == ((1, 64, 8, 8), (1, 128, 4, 4), (1, 256, 2, 2))


def test_head_dropouts_are_the_references() -> None:
    danet = built("danet_resnet50.yaml")
    assert [type(getattr(danet, name)) for name in ("drop6", "drop7", "drop8")] == [torch.nn.Dropout2d] * 3
    assert danet.drop6.p == 0.1
    deeplab = built("deeplabv3_resnet50.yaml")
    assert type(deeplab.project_drop) is torch.nn.Dropout and deeplab.project_drop.p == 0.5


def test_danet_children_follow_the_official_registration_order() -> None:
    names = [name for name, module in built("danet_resnet50.yaml").named_children()
             if any(True for _ in module.parameters())]
    assert names[names.index("conv5a"):] == ["conv5a", "conv5c", "sa", "sc", "conv51", "conv52", "conv6", "conv7",
                                             "conv8"]


# --- c2f and sppf -------------------------------------------------------------------------------------------

YOLO = "input: {{channels: {c}, size: {size}}}\ndefaults: {{act: silu, eps: 0.001, momentum: 0.03}}\nlayers:\n  - {entry}\n"


def yolo_spec(entry: str, channels: int, size: int = 6) -> netspec.Spec:
    return netspec.loads(YOLO.format(c=channels, size=size, entry=entry))


@given(channels=st.integers(1, 24), out=st.integers(2, 24), depth=st.integers(1, 3), shortcut=st.booleans())
def test_c2f_is_ultralytics_c2f(channels: int, out: int, depth: int, shortcut: bool) -> None:
    entry = f"c2f: {{out: {out}, depth: {depth}, shortcut: {str(shortcut).lower()}}}"
    ours = netspec.build(yolo_spec(entry, channels))
    theirs = reference.C2f(channels, out, depth, shortcut)
    assert netspec.summary(yolo_spec(entry, channels)).params == numel(theirs) == numel(ours)
    for m in theirs.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps, m.momentum = 1e-3, 0.03
    compare_module(ours, theirs, channels)


@given(channels=st.integers(2, 24), out=st.integers(1, 24), kernel=st.sampled_from([1, 3, 5, 7]))
def test_sppf_is_ultralytics_sppf(channels: int, out: int, kernel: int) -> None:
    entry = f"sppf: {{out: {out}, kernel: {kernel}}}"
    ours = netspec.build(yolo_spec(entry, channels))
    theirs = reference.SPPF(channels, out, kernel)
    assert netspec.summary(yolo_spec(entry, channels)).params == numel(theirs) == numel(ours)
    for m in theirs.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps, m.momentum = 1e-3, 0.03
    compare_module(ours, theirs, channels)


def compare_module(ours: torch.nn.Module, theirs: torch.nn.Module, channels: int) -> None:
    reference.randomize(theirs)
    reference.copy_by_order(theirs, ours)
    x = torch.randn(2, channels, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x))


def test_yolo_kinds_register_ultralytics_module_names_in_order() -> None:
    c2f = netspec.build(yolo_spec("c2f: {out: 16, depth: 2}", 8)).c2f1
    assert [name for name, _ in c2f.named_children()] == ["cv1", "cv2", "m"]
    assert [name for name, _ in c2f.cv1.named_children()] == ["conv", "norm", "act"]  # Ultralytics: conv, bn, act
    assert [name for name, _ in c2f.m[0].named_children()] == ["cv1", "cv2"]
    sppf = netspec.build(yolo_spec("sppf: {out: 16}", 8)).sppf1
    assert [name for name, _ in sppf.named_children()] == ["cv1", "cv2", "m"]
    assert sppf.m.kernel_size == 5 and sppf.m.stride == 1 and sppf.m.padding == 2


def test_c2f_out_and_depth_scale_as_ultralytics() -> None:
    spec = netspec.loads("input: {channels: 32, size: 8}\nscale: {width: 0.25, depth: 0.33, max_channels: 1024}\n"
                         "layers:\n  - c2f: {out: 1024, depth: 6, shortcut: true}\n  - sppf: {out: 2048}\n")
    c2f, sppf = spec.scaled_layers()
    assert (c2f.out, c2f.depth, sppf.out) == (256, 2, 256)  # make_divisible(min(c, 1024) * 0.25, 8), round(6 * 0.33)
    assert len(netspec.build(spec).c2f1.m) == 2


@pytest.mark.parametrize("text, where, message", [
    ("input: {channels: 8, size: 8}\nlayers:\n  - c2f: {out: 1}\n", ":3:", "at least 2"),
    ("input: {channels: 8, size: 1}\nlayers:\n  - c2f: {out: 2, depth: 50000000}\n", ":3:", "at most 1024"),
    ("input: {channels: 1, size: 8}\nlayers:\n  - sppf: {out: 4}\n", ":3:", "at least 2 input channels"),
    ("input: {channels: 8, size: 8}\nlayers:\n  - sppf: {out: 4, kernel: 4}\n", ":3:", "must be odd"),
    ("input: {channels: 8, size: 8}\nlayers:\n  - avgpool\n  - c2f: {out: 4}\n", ":4:", "feature map"),
    ("input: {channels: 8, size: 8}\nlayers:\n  - avgpool\n  - dropout: {channels: true}\n", ":4:", "feature map"),
])
def test_bad_yolo_kinds_and_dropout_are_located(text: str, where: str, message: str) -> None:
    with pytest.raises(netspec.SpecError) as error:
        netspec.check(netspec.loads(text, name="bad.yaml"))
    assert f"bad.yaml{where}" in str(error.value) and message in str(error.value)


def test_channel_dropout_zeroes_whole_channels() -> None:
    model = netspec.build(netspec.loads("input: {channels: 64, size: 4}\nlayers:\n  - dropout: {p: 0.5, channels: true}\n"))
    assert type(model.dropout1) is torch.nn.Dropout2d
    y = model.train()(torch.ones(2, 64, 4, 4))
    per_channel = y.flatten(2)
    assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()  # each channel kept (x2) or dropped whole
    assert type(netspec.build(netspec.loads("input: {channels: 4}\nlayers:\n  - dropout\n")).dropout1) is torch.nn.Dropout


def test_yolo_kinds_take_their_own_norm_and_act() -> None:
    spec = yolo_spec("c2f: {out: 8, norm: none, act: relu}", 4)
    c2f = netspec.build(spec).c2f1
    convs = [m for m in c2f.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(conv.bias is not None for conv in convs)  # no norm: the convs get biases
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in c2f.modules())
    assert {type(m) for m in c2f.modules() if not list(m.children())} == {torch.nn.Conv2d, torch.nn.ReLU}
    assert netspec.summary(spec).params == numel(c2f)
    sppf = netspec.build(yolo_spec("sppf: {out: 8, act: relu}", 4)).sppf1
    assert isinstance(sppf.cv1.act, torch.nn.ReLU) and isinstance(sppf.cv2.norm, torch.nn.BatchNorm2d)
