"""Issue 15: pretrained weights matched by architecture (``netspec.load_weights``), self-describing checkpoints
(``netspec.save`` / ``netspec.load_model``), and ``netspec build --weights/--seed``.

The sources are reference models written here with plain torch modules in torchvision's and timm's layout and
state-dict order (torchvision's ResNet-50 is ``benchmarks/baselines.py``'s); their weights and BN statistics are
randomised, loaded into netspec's models by architecture, and the outputs compared.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

import pytest
import torch
from hypothesis import given
from torch import nn

import netspec
import netspec.strategies as nst
from netspec.cli import main
from netspec.weights import WeightsError, align, flow_order, model_units

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    import baselines
finally:
    sys.path.remove(str(ROOT / "benchmarks"))

TINY = """\
name: tiny
input: {channels: 3, size: 16}
layers:
  - conv: {out: 8, kernel: 3, stride: 2}
  - stage: {block: basic, out: 16, depth: 1, stride: 2}
  - avgpool
  - linear: {out: HEAD}
"""


def randomised(model: nn.Module) -> nn.Module:
    """Every weight, bias and BN statistic random (not PyTorch's ones/zeros), so each one reaches the output."""
    torch.manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.num_batches_tracked.fill_(7)
            elif isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
                module.bias.uniform_(-0.1, 0.1)
    return model.eval()


# --- a timm-layout SE-ResNet-50 (timm resnet.py Bottleneck, layers/squeeze_excite.py SEModule) -------------


class TimmSE(nn.Module):
    """timm ``SEModule``: mean, fc1 (1x1 conv with bias), bn (Identity), ReLU, fc2, sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1, bias=True)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.bn(self.fc1(x.mean((2, 3), keepdim=True))))))


class TimmSEBottleneck(nn.Module):
    """timm ``Bottleneck`` with ``attn_layer='se'``: children in timm's order, the attention before the downsample.

    ``attention`` builds the block's attention from its output channels (timm keeps it as ``self.se`` whatever
    it is; the official ECANet names it ``eca``, in the same place).
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 attention: Callable[[int], nn.Module] = TimmSE) -> None:
        super().__init__()
        outplanes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(planes, outplanes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.se = attention(outplanes)
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))
        x = self.se(self.bn3(self.conv3(x)))
        return self.act3(x + shortcut)


class TimmSEResNet50(nn.Module):
    """timm ``seresnet50``: plain 7x7 stem, SE (r=16) in every bottleneck, ``fc`` head.

    ``attentions`` gives each stage's attention builder instead (ECA-ResNet-50 with k = 3, 5, 5, 7).
    """

    def __init__(self, num_classes: int = 1000, attentions: Sequence[Callable[[int], nn.Module]] = (TimmSE,) * 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        stages = [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]
        for index, ((planes, depth, stride), attention) in enumerate(zip(stages, attentions), 1):
            downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, kernel_size=1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
            blocks = [TimmSEBottleneck(inplanes, planes, stride, downsample, attention)]
            blocks += [TimmSEBottleneck(planes * 4, planes, attention=attention) for _ in range(depth - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
            inplanes = planes * 4
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.global_pool(x).flatten(1))


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet50() -> nn.Module:
    return randomised(baselines.ResNet50())


@pytest.fixture(scope="module")
def resnet50_state(resnet50: nn.Module) -> dict[str, torch.Tensor]:
    return resnet50.state_dict()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def tiny(tmp_path: Path, head: int = 5) -> Path:
    path = tmp_path / f"tiny{head}.yaml"
    path.write_text(TINY.replace("HEAD", str(head)))
    return path


def trunk_of(report: netspec.WeightsReport) -> set[str]:
    return {model.name for model, _ in report.matched}


# --- matching by architecture ----------------------------------------------------------------------------


@pytest.mark.slow
def test_torchvision_resnet50_into_resnet50_gives_identical_outputs(resnet50, resnet50_state, image) -> None:
    model = netspec.build(SPECS / "resnet50.yaml")
    report = netspec.load_weights(model, resnet50_state)
    assert report.complete and len(report.matched) == 107  # 53 convs, 53 BNs, fc
    shortcuts = {model.name: source.name for model, source in report.matched if ".shortcut." in f"{model.name}."}
    assert len(shortcuts) == 8 and all(".downsample." in f"{source}." for source in shortcuts.values())
    assert shortcuts["stage2.block1.shortcut.conv"] == "layer2.0.downsample.0"
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(image), resnet50(image), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["se_resnet50", "cbam_resnet50"])
def test_resnet50_weights_fill_the_trunk_and_only_the_attention_is_new(name: str, resnet50_state) -> None:
    model = netspec.build(SPECS / f"{name}.yaml")
    before = {key: tensor.clone() for key, tensor in model.state_dict().items()}
    report = netspec.load_weights(model, resnet50_state)
    trunk = {unit.name for unit in model_units(model) if ".attention." not in unit.name}
    assert trunk_of(report) == trunk and len(trunk) == 107
    assert report.new and all(".attention." in unit.name for unit in report.new)
    assert not report.unused and not report.mismatched
    assert len(report.new) == {"se_resnet50": 2, "cbam_resnet50": 4}[name] * 16  # SE: fc1, fc2; CBAM: + conv, BN
    state = model.state_dict()
    for model_unit, source_unit in report.matched:  # every trunk tensor is the source's, BN statistics included
        for local, tensor in model_unit.tensors.items():
            source = resnet50_state[f"{source_unit.name}.{local}"]
            assert torch.equal(state[f"{model_unit.name}.{local}"], source.reshape(tensor.shape))
    for unit in report.new:  # the attention keeps the spec's initialisation
        for local in unit.tensors:
            assert torch.equal(state[f"{unit.name}.{local}"], before[f"{unit.name}.{local}"])


@pytest.mark.slow
def test_timm_layout_se_resnet50_into_se_resnet50_gives_identical_outputs(image) -> None:
    reference = randomised(TimmSEResNet50())
    model = netspec.build(SPECS / "se_resnet50.yaml")
    report = netspec.load_weights(model, reference.state_dict())
    assert report.complete and len(report.matched) == 107 + 32
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(image), reference(image), rtol=1e-5, atol=1e-5)


def test_official_layout_eca_resnet50_into_the_released_eca_spec_gives_identical_outputs(image) -> None:
    kernels = [partial(baselines.ECABaseline, k_size=k) for k in (3, 5, 5, 7)]  # BangguWu/ECANet's eca_layer
    reference = randomised(TimmSEResNet50(attentions=kernels))
    model = netspec.build(SPECS / "eca_resnet50_k3557.yaml")
    report = netspec.load_weights(model, reference.state_dict(), strict=True)
    assert len(report.matched) == 107 + 16
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(image), reference(image), rtol=1e-5, atol=1e-5)


def test_a_head_of_another_size_is_reported_and_skipped(image) -> None:
    reference = randomised(baselines.ResNet50(num_classes=10))
    model = netspec.build(SPECS / "resnet50.yaml")
    head = model.linear1.weight.detach().clone()
    report = netspec.load_weights(model, reference.state_dict())
    assert [(m.model.name, m.source.name) for m in report.mismatched] == [("linear1", "fc")]
    assert not report.new and not report.unused and len(report.matched) == 106
    assert torch.equal(model.linear1.weight, head)
    assert "shape mismatches, skipped (model <- source): 1" in str(report)
    assert "linear1 (Linear: weight (1000, 2048), bias (1000,)) <- fc (linear: weight (10, 2048), bias (10,))" in str(report)
    features = nn.Sequential(*list(reference.children())[:-1])  # everything before the head agrees
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model[:-1](image), features(image).flatten(1), rtol=0, atol=0)
    se_report = netspec.load_weights(netspec.build(SPECS / "se_resnet50.yaml"), reference.state_dict())
    assert [(m.model.name, m.source.name) for m in se_report.mismatched] == [("linear1", "fc")]  # not an SE conv
    assert len(se_report.new) == 32 and all(".attention." in unit.name for unit in se_report.new)
    with pytest.raises(WeightsError) as raised:
        netspec.load_weights(netspec.build(SPECS / "resnet50.yaml"), reference.state_dict(), strict=True)
    assert [problem.message for problem in raised.value.problems] == [
        "shape mismatch: linear1 (Linear: weight (1000, 2048), bias (1000,)) <- fc (linear: weight (10, 2048), bias (10,))"
    ]


def test_strict_lists_every_mismatch_and_loads_nothing(resnet50_state) -> None:
    model = netspec.build(SPECS / "se_resnet50.yaml")
    before = {key: tensor.clone() for key, tensor in model.state_dict().items()}
    with pytest.raises(WeightsError) as raised:
        netspec.load_weights(model, resnet50_state, strict=True)
    messages = [problem.message for problem in raised.value.problems]
    assert len(messages) == 32 and all(m.startswith("new in the model, nothing in the source for it: ") for m in messages)
    assert "stage4.block3.attention.fc2 (PooledConv: weight (2048, 128, 1, 1), bias (2048,))" in messages[-1]
    assert all(torch.equal(tensor, before[key]) for key, tensor in model.state_dict().items())


def test_source_modules_the_model_lacks_are_unused(tmp_path: Path) -> None:
    """A DeepLab-style auxiliary head after the trunk, and a module only the source has inside it."""
    source = netspec.build(tiny(tmp_path), seed=1).state_dict()
    extra = OrderedDict()
    for key, tensor in source.items():
        extra[f"backbone.{key}"] = tensor
        if key == "conv1.norm.num_batches_tracked":  # an extra 1x1 conv inside the trunk
            extra["backbone.extra.weight"] = torch.randn(8, 8, 1, 1)
    extra["aux_classifier.0.weight"] = torch.randn(4, 16, 3, 3)
    extra["aux_classifier.1.weight"] = torch.randn(4)
    model = netspec.build(tiny(tmp_path), seed=2)
    report = netspec.load_weights(model, extra)
    assert [unit.name for unit in report.unused] == ["backbone.extra", "aux_classifier.0", "aux_classifier.1"]
    assert not report.new and not report.mismatched
    assert all(torch.equal(model.state_dict()[key], tensor) for key, tensor in source.items())


def test_a_linear_weight_loads_into_a_1x1_conv_and_old_bn_without_counters(tmp_path: Path) -> None:
    """senet.pytorch's SE has Linear layers where netspec's has 1x1 convs; old checkpoints lack num_batches_tracked."""
    spec = tmp_path / "se.yaml"
    spec.write_text("input: {channels: 32, size: 8}\nlayers:\n  - se: {reduction: 4}\n  - conv: {out: 8, kernel: 1}\n")
    reference = baselines.SEBaseline(32, reduction=4)
    bn = randomised(nn.Sequential(nn.Conv2d(32, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU()))
    source = {**{f"se.{k}": v for k, v in reference.state_dict().items()},
              **{f"conv.{k}": v for k, v in bn.state_dict().items() if not k.endswith("num_batches_tracked")}}
    model = netspec.build(spec)
    assert netspec.load_weights(model, source, strict=True).complete
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), bn(reference(x)))


def test_an_fx_graph_module_loads_like_a_sequential(resnet50, resnet50_state, image) -> None:
    traced = torch.fx.symbolic_trace(netspec.build(SPECS / "resnet50.yaml"))
    assert netspec.load_weights(traced, resnet50_state).complete
    with torch.no_grad():
        torch.testing.assert_close(traced.eval()(image), resnet50(image), rtol=0, atol=0)


def test_align_skips_insertions_and_matches_early() -> None:
    assert align(list("abXcd"), list("abcd")) == [(0, 0), (1, 1), (3, 2), (4, 3)]
    assert align(list("aXa"), list("a")) == [(0, 0)]
    assert align(list("abc"), list("xyz")) == []
    assert align([], list("ab")) == []


# --- files ------------------------------------------------------------------------------------------------


def test_pth_files_training_checkpoints_and_ddp_prefixes(tmp_path: Path, resnet50_state) -> None:
    plain, wrapped = tmp_path / "resnet50.pth", tmp_path / "train.ckpt"
    torch.save(resnet50_state, plain)
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in resnet50_state.items()}}, wrapped)
    for path in (plain, wrapped):
        report = netspec.load_weights(netspec.build(SPECS / "resnet50.yaml"), path)
        assert report.complete and report.source == str(path)
        assert str(report).startswith(f"weights from {path}: 107 modules matched (320 tensors, ")


def test_safetensors_files_are_read_back_in_registration_order(tmp_path: Path, resnet50_state, image) -> None:
    safetensors = pytest.importorskip("safetensors.torch")
    path = tmp_path / "resnet50.safetensors"
    safetensors.save_file(resnet50_state, str(path))  # the file keeps the names sorted, not in module order
    assert netspec.load_weights(netspec.build(SPECS / "resnet50.yaml"), path).complete
    for state in (resnet50_state, randomised(TimmSEResNet50()).state_dict()):  # conv1, bn1 ... se, downsample
        assert modules_in(flow_order(dict(sorted(state.items())))) == modules_in(state)


def modules_in(keys: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(key.rpartition(".")[0] for key in keys))


def test_safetensors_without_the_package_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x00" * 16)
    monkeypatch.setitem(sys.modules, "safetensors", None)  # import safetensors -> ImportError
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(WeightsError) as raised:
        netspec.load_weights(nn.Linear(2, 2), path)
    assert str(raised.value) == (
        f"{path}: reading .safetensors needs the safetensors package: pip install 'netspec[safetensors]'"
    )


class RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.mkdir, (self.marker,))


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = tmp_path / "good.pt"
    torch.save({"weight": torch.randn(64, 64)}, good)
    data = good.read_bytes()
    files: dict[str, tuple[Path, str]] = {}

    def add(name: str, content: bytes, message: str) -> None:
        path = tmp_path / name
        path.write_bytes(content)
        files[name] = (path, message)

    add("truncated.pt", data[: len(data) // 2], "truncated or corrupted: not a complete zip archive")
    add("crc.pt", data.replace(data[2000:2100], bytes(100)), "corrupted: Bad CRC-32 for file")
    add("empty.pt", b"", "not a PyTorch checkpoint (an empty file)")
    add("spec.pth", b"layers: []\n", "not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    add("bad.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ", "not a readable safetensors file")
    marker = tmp_path / "pwned"
    torch.save({"weight": RunsCode(str(marker))}, tmp_path / "evil.pt")
    files["evil.pt"] = (tmp_path / "evil.pt", "refused: loading it would run pickled code (GLOBAL posix.mkdir)")
    torch.save(torch.ones(3), tmp_path / "tensor.pt")
    files["tensor.pt"] = (tmp_path / "tensor.pt", "not a state dict: the file holds a Tensor")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "notensors.pt")
    files["notensors.pt"] = (tmp_path / "notensors.pt", "no tensors in this checkpoint (top-level keys: 'epoch', 'lr')")
    files["missing.pt"] = (tmp_path / "missing.pt", "no such file")
    files["directory"] = (tmp_path, "is a directory, not a checkpoint file")
    return files


def test_bad_files_get_one_line_naming_the_file(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    for name, (path, message) in bad_files(tmp_path).items():
        with pytest.raises(WeightsError) as raised:
            netspec.load_weights(nn.Linear(64, 64), path)
        text = str(raised.value)
        assert "\n" not in text and text.startswith(f"{path}: {message}"), (name, text)
    assert not (tmp_path / "pwned").exists()  # the pickle's code never ran


def test_bad_files_on_the_command_line_exit_1_with_one_line(tmp_path: Path, capsys) -> None:
    spec = tiny(tmp_path)
    for name, (path, message) in bad_files(tmp_path).items():
        if name.endswith(".safetensors"):
            continue
        assert main(["build", str(spec), "--weights", str(path), "-o", str(tmp_path / "out.pt")]) == 1
        captured = capsys.readouterr()
        assert captured.err.startswith(f"{path}: {message}") and captured.err.count("\n") == 1, (name, captured.err)
        assert not (tmp_path / "out.pt").exists()
        assert main(["build", str(path) if path.suffix in (".pt", ".pth") else f"{path}.pt"]) == 1
        assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "pwned").exists()


# --- self-describing checkpoints ----------------------------------------------------------------------------


def test_save_and_load_model_round_trip(tmp_path: Path) -> None:
    model = netspec.build(tiny(tmp_path), seed=4)
    path = tmp_path / "net.pt"
    netspec.save(model, path)
    loaded = netspec.load_model(path)
    assert type(loaded) is type(model) and netspec.weights.spec_of(loaded) == netspec.load(tiny(tmp_path))
    assert list(loaded.state_dict()) == list(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    again = tmp_path / "again.pt"
    netspec.save(loaded, again)
    assert again.read_bytes() == path.read_bytes()  # same weights and spec, same bytes
    data = torch.load(path, weights_only=True)  # plain data: readable without netspec's code
    assert data["format"] == "netspec-checkpoint" and data["version"] == 1
    assert netspec.loads(data["spec"]) == netspec.load(tiny(tmp_path))
    assert list(data["state_dict"]) == list(model.state_dict())


def test_save_needs_a_spec_for_a_model_netspec_did_not_build(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not carry its spec"):
        netspec.save(nn.Linear(2, 2), tmp_path / "net.pt")
    model = nn.Sequential(OrderedDict(linear1=nn.Linear(3, 4)))
    spec = tmp_path / "linear.yaml"
    spec.write_text("input: {channels: 3, size: 1}\nlayers: [flatten, {linear: {out: 4}}]\n")
    netspec.save(model, tmp_path / "net.pt", spec=spec)
    assert torch.equal(netspec.load_model(tmp_path / "net.pt")[1].weight, model.linear1.weight)


def test_load_model_refuses_what_is_not_its_checkpoint(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save(netspec.build(tiny(tmp_path)).state_dict(), plain)
    with pytest.raises(WeightsError, match=r"plain.pt: not a netspec checkpoint \(no spec inside"):
        netspec.load_model(plain)
    mixed = tmp_path / "mixed.pt"
    netspec.save(netspec.build(tiny(tmp_path, head=7)), mixed, spec=tiny(tmp_path))  # weights of another head
    with pytest.raises(WeightsError) as raised:
        netspec.load_model(mixed)
    assert [str(p) for p in raised.value.problems] == [
        f"{mixed}: shape mismatch: linear1 (Linear: weight (5, 16), bias (5,)) <- linear1 (linear: weight (7, 16), bias (7,))"
    ]
    broken = tmp_path / "broken.pt"
    data = torch.load(mixed, weights_only=True)
    torch.save({**data, "spec": "layers: [{conv: {out: 0}}]\n"}, broken)
    with pytest.raises(netspec.SpecError, match=r"broken.pt \(its spec\):1:"):
        netspec.load_model(broken)


# --- the command line -----------------------------------------------------------------------------------------


def test_build_with_weights_prints_the_report_and_writes_them(tmp_path: Path, capsys) -> None:
    source = tmp_path / "source.pth"
    reference = netspec.build(tiny(tmp_path, head=10), seed=9)
    torch.save(reference.state_dict(), source)
    out = tmp_path / "model.pt"
    assert main(["build", str(tiny(tmp_path)), "--weights", str(source), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"weights from {source}: " in printed and "shape mismatches, skipped (model <- source): 1\n" in printed
    assert printed.rstrip().endswith(f"wrote {out}")
    written = torch.load(out, weights_only=True)["state_dict"]
    assert torch.equal(written["conv1.conv.weight"], reference.state_dict()["conv1.conv.weight"])
    assert main(["build", str(tiny(tmp_path)), "--weights", str(source), "--strict"]) == 1
    assert capsys.readouterr().err.startswith(f"{source}: shape mismatch: linear1 (Linear: weight (5, 16)")
    assert main(["build", str(tiny(tmp_path)), "--weights", str(source), "--json"]) == 0
    assert '"mismatched": [' in capsys.readouterr().out


def test_seed_makes_exports_identical(tmp_path: Path, capsys) -> None:
    spec = str(tiny(tmp_path))
    outputs = [tmp_path / f"{name}.pt" for name in ("a", "b", "c")]
    for path, seed in zip(outputs, ("3", "3", "4")):
        assert main(["build", spec, "--seed", seed, "-o", str(path)]) == 0
    assert outputs[0].read_bytes() == outputs[1].read_bytes() != outputs[2].read_bytes()
    extensions = [".pt2"] + ([".onnx"] if all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript")) else [])
    for extension in extensions:  # programs too: the archive is written in memory, not under a temporary name
        programs = [tmp_path / f"{name}{extension}" for name in ("a", "b")]
        for path in programs:
            assert main(["build", spec, "--seed", "3", "-o", str(path)]) == 0
        assert programs[0].read_bytes() == programs[1].read_bytes()
    state = torch.get_rng_state()
    netspec.build(spec, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is left alone
    with pytest.raises(ValueError, match="seed must be a whole number from 0 to 2\\*\\*64-1, got -1"):
        netspec.build(spec, seed=-1)
    with pytest.raises(SystemExit) as raised:
        main(["build", spec, "--seed", "-1"])
    assert raised.value.code == 2 and "--seed: must be a whole number from 0 to 2**64-1" in capsys.readouterr().err


def test_build_of_a_checkpoint_prints_what_is_inside(tmp_path: Path, capsys) -> None:
    model = netspec.build(tiny(tmp_path), seed=5)
    path = tmp_path / "net.pt"
    netspec.save(model, path)
    assert main(["build", str(path)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{path}: netspec checkpoint (written by netspec {netspec.__version__}): its spec and ")
    assert "linear1   linear   (N, 5)" in printed and "total params: " in printed
    out = tmp_path / "again.pt"  # its own weights go into the export
    assert main(["build", str(path), "-o", str(out)]) == 0
    written = torch.load(out, weights_only=True)["state_dict"]
    assert all(torch.equal(a, b) for a, b in zip(written.values(), model.state_dict().values()))


# --- every kind: a model loads its own architecture's weights, and its checkpoint round-trips -------------------


@given(nst.specs(max_layers=3))
def test_any_spec_loads_its_own_weights_by_architecture(tmp_path_factory: pytest.TempPathFactory, spec) -> None:
    source, model = netspec.build(spec, seed=1), netspec.build(spec, seed=2)
    with torch.no_grad():  # every tensor random, so nothing matches by accident (BN statistics included)
        for key, tensor in source.state_dict().items():  # a variance stays positive: a negative one is refused
            tensor.copy_(torch.randint(1, 100, tensor.shape) if not tensor.is_floating_point() else
                         torch.rand_like(tensor) + 0.5 if key.endswith("running_var") else torch.randn_like(tensor))
    report = netspec.load_weights(model, source.state_dict(), strict=True)
    assert report.complete and len(report.matched) == len(model_units(model))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))
    path = tmp_path_factory.mktemp("checkpoint") / "net.pt"
    netspec.save(model, path)
    loaded = netspec.load_model(path)
    assert netspec.weights.spec_of(loaded) == spec
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), source.state_dict().values()))


def test_a_blocks_shortcut_is_read_after_its_body_and_nothing_else_moves() -> None:
    from netspec.weights import shortcuts_last

    timm_byobnet = ["stem.conv", "stages.0.0.shortcut.conv", "stages.0.0.shortcut.bn", "stages.0.0.conv1.conv",
                    "stages.0.0.conv1.bn", "stages.0.1.conv1.conv", "head.fc"]
    assert shortcuts_last(timm_byobnet) == ["stem.conv", "stages.0.0.conv1.conv", "stages.0.0.conv1.bn",
                                            "stages.0.0.shortcut.conv", "stages.0.0.shortcut.bn",
                                            "stages.0.1.conv1.conv", "head.fc"]
    convnext = ["stem.0", "stages.1.downsample.0", "stages.1.downsample.1", "stages.1.blocks.0.conv_dw", ""]
    assert shortcuts_last(convnext) == convnext  # a stage's downsample is its first layer: never moved
    netspec_block = ["stage1.block1.body.conv1.conv", "stage1.block1.shortcut.conv", "stage1.block1.shortcut.norm"]
    assert shortcuts_last(netspec_block) == netspec_block
    top_level = ["shortcut.conv", "shortcut.norm", "body.conv", "last.conv"]  # a graph spec's entry named so
    assert shortcuts_last(top_level) == top_level  # top-level entries are never reordered
    not_first = ["stages.0.0.conv1.conv", "stages.0.0.shortcut.conv", "stages.0.0.conv2.conv"]
    assert shortcuts_last(not_first) == not_first  # only a shortcut registered before its siblings moves


def _graph_with_branch_named(name: str) -> str:
    return (f"input: {{channels: 8, size: [8, 8]}}\nlayers:\n"
            f"  - conv: {{out: 8, kernel: 1}}\n    name: {name}\n"
            f"  - conv: {{out: 8, kernel: 1}}\n    name: body\n    from: input\n"
            f"  - conv: {{out: 8, kernel: 1}}\n    name: last\n"
            f"  - add: {{}}\n    from: [{name}, last]\n")


@pytest.mark.parametrize("source_name, model_name", [("shortcut", "proj"), ("proj", "shortcut"),
                                                     ("shortcut", "shortcut")])
def test_a_top_level_entry_named_shortcut_loads_where_it_is_registered(source_name: str, model_name: str) -> None:
    """A graph spec's entry a user names `shortcut` is an entry like any other: a checkpoint of the same
    architecture loads into the same places whatever the entries are called."""
    source = netspec.build(netspec.loads(_graph_with_branch_named(source_name)), seed=1).eval()
    model = netspec.build(netspec.loads(_graph_with_branch_named(model_name)), seed=2).eval()
    with torch.no_grad():  # BN statistics and affine away from their initialisation: a swap would show
        for key, tensor in source.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5 if key.endswith("running_var") else torch.randn_like(tensor))
    netspec.load_weights(model, source.state_dict(), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source(x), rtol=0, atol=0)


def test_a_block_class_known_to_register_its_shortcut_first_is_read_body_first_on_both_sides() -> None:
    """torchvision's RegNet block registers ``proj`` first: where its module is at hand (the model's side, or
    ``source_state_dict``) its class says so; a bare state dict has only names, so its ``proj`` stays first."""
    from network_references import ResBottleneckBlock

    from netspec.importers.modules import source_state_dict

    torch.manual_seed(0)
    reference = nn.Sequential(ResBottleneckBlock(8, 16, 2, 12, 4))
    for module in reference.modules():  # away from BN's initialisation, so a swapped BN would show
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1), module.running_var.uniform_(0.8, 1.2)
            module.weight.data.uniform_(0.8, 1.2), module.bias.data.uniform_(-0.1, 0.1)
    spec = netspec.loads("input: {channels: 8, size: 8}\nlayers:\n"
                         "  - stage: {block: regnet, out: 16, width: 12, group_width: 4, stride: 2}\n")
    model = netspec.build(spec).eval()
    reference.eval()
    x = torch.randn(2, 8, 8, 8)
    netspec.load_weights(model, source_state_dict(reference), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    with pytest.raises(WeightsError):  # the bare state dict: the 1x1 proj pairs with the body's first 1x1 conv
        netspec.load_weights(model, reference.state_dict(), strict=True)
    target = nn.Sequential(ResBottleneckBlock(8, 16, 2, 12, 4)).eval()  # and into the class: netspec's weights
    netspec.load_weights(target, model.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(target(x), model(x))
    netspec.load_weights(target, reference.state_dict(), strict=True)  # the same layout both sides: as it stands
    with torch.no_grad():
        torch.testing.assert_close(target(x), reference(x), rtol=0, atol=0)
