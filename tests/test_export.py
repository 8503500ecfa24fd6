"""Issue 6: `netspec build SPEC -o OUT` writes .pt (state dict), .pt2 (torch.export program, loadable without
netspec) and .onnx (optional extra, checked with onnxruntime); clear one-line errors; atomic writes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import netspec
from netspec import export
from netspec.cli import main
from netspec.files import write_atomic
from netspec.registry import KINDS

ROOT = Path(__file__).resolve().parent.parent
ATTENTION = sorted(kind for kind, cls in KINDS.items() if cls.role == "attention" and cls.__module__.startswith("netspec."))

SIZED = {"bat": "{bat: {block_size: 2}}", "halo_attn": "{halo_attn: {block_size: 2}}"}
"""Kinds whose default blocks do not divide the zoo's 12x10 maps."""

# Every built-in attention kind, as a layer and inside a block, so export covers all their forward code.
SPEC = "\n".join([
    "name: export_zoo",
    "input: {channels: 3, size: [24, 20]}",
    "layers:",
    "  - conv: {out: 32, stride: 2}",
    "  - stage: {block: bottleneck, out: 64, depth: 1, attention: se}",
    *(f"  - {SIZED.get(kind, kind)}" for kind in ATTENTION),
    "  - avgpool",
    "  - dropout: {p: 0.2}",
    "  - linear: {out: 7}",
    "",
])

# Runs in a fresh interpreter (-I: no PYTHONPATH, no user site, cwd outside the repo) where importing
# netspec fails: the program must load and run on torch alone.
LOAD_WITHOUT_NETSPEC = f"""
import importlib.abc, sys

class NoNetspec(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "netspec" or name.startswith("netspec."):
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return None

sys.meta_path.insert(0, NoNetspec())
sys.path = [entry for entry in sys.path if entry not in ("", {str(ROOT)!r})]
try:
    import netspec
except ModuleNotFoundError:
    pass
else:
    sys.exit("netspec is importable: the test proves nothing")
import torch

program = torch.export.load(sys.argv[1])
inputs = torch.load(sys.argv[2])
with torch.no_grad():
    outputs = [program.module()(x) for x in inputs]
torch.save(outputs, sys.argv[3])
assert not [name for name in sys.modules if name.split(".")[0] == "netspec"]
"""


@pytest.fixture(scope="module")
def spec() -> netspec.Spec:
    return netspec.loads(SPEC)


@pytest.fixture(scope="module")
def model(spec: netspec.Spec) -> torch.nn.Module:
    """The built model with every parameter and statistic random (gammas and zero-inits would hide paths)."""
    torch.manual_seed(0)
    model = netspec.build(spec)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point() and tensor.ndim >= 2:
                # conv/linear weights of both signs: all-positive ones grow the map at every kind, and the
                # self-attention kinds (lambda: quadratic in its input) overflowed float32 in the zoo
                tensor.copy_((torch.rand_like(tensor) - 0.5) * 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) * 0.5 + 0.25)
    return model.eval()


def inputs() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(batch, 3, 24, 20, generator=generator) for batch in (1, 3)]  # the batch is dynamic


def reference(model: torch.nn.Module) -> list[torch.Tensor]:
    with torch.no_grad():
        return [model(x) for x in inputs()]


def assert_close(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_spec_covers_every_attention_kind() -> None:
    assert {"se", "eca", "cbam"} <= set(ATTENTION)
    assert all(f"  - {SIZED.get(kind, kind)}\n" in SPEC for kind in ATTENTION)


def test_pt2_loads_and_runs_without_netspec(spec: netspec.Spec, model: torch.nn.Module, tmp_path: Path) -> None:
    program = tmp_path / "model.pt2"
    assert export.save(spec, program, model=model) == "torch.export program"
    torch.save(inputs(), tmp_path / "inputs.pt")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = subprocess.run(
        [sys.executable, "-I", "-c", LOAD_WITHOUT_NETSPEC, str(program), str(tmp_path / "inputs.pt"),
         str(tmp_path / "outputs.pt")],
        cwd=outside, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert_close(torch.load(tmp_path / "outputs.pt"), reference(model))


@pytest.mark.slow
def test_onnx_matches_torch_in_onnxruntime(spec: netspec.Spec, model: torch.nn.Module, tmp_path: Path) -> None:
    for package in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(package, reason=f"the onnx extra is not installed ({package}): pip install 'netspec[onnx]'")
    import onnxruntime

    path = tmp_path / "model.onnx"
    assert export.save(spec, path, model=model) == "ONNX"
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]  # weights inside the file, no temporary left
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [item.name for item in session.get_inputs()] == ["input"]
    actual = [torch.from_numpy(session.run(["output"], {"input": x.numpy()})[0]) for x in inputs()]
    assert_close(actual, reference(model))


# A graph with two outputs: named entries, `from:`, a dilated stage, an SE-style gate (mul), cbam, add, upconv,
# concat with a skip, and an upsample to the input's size.
GRAPH_SPEC = """\
name: export_graph
input: {channels: 3, size: [24, 20]}
layers:
  - conv: {out: 16, stride: 2}
    name: stem
  - stage: {block: basic, out: 32, depth: 1, stride: 2}
    name: c3
  - stage: {block: bottleneck, out: 32, width: 8, depth: 2, dilation: 2}
    name: c4
  - avgpool: {size: 1}
  - conv: {out: 32, kernel: 1, norm: none, act: sigmoid}
    name: gate
  - mul: {}
    from: [c4, gate]
  - cbam: {}
    name: att
  - add: {}
    from: [att, c3]
  - upconv: {out: 16}
  - concat: {}
    from: [stem, upconv1]
  - conv: {out: 5, kernel: 1, norm: none, act: none}
  - upsample: {to: input, mode: bilinear}
    name: seg
outputs: [seg, att]
"""


@pytest.fixture(scope="module")
def graph() -> tuple[netspec.Spec, torch.nn.Module]:
    spec = netspec.loads(GRAPH_SPEC)
    torch.manual_seed(0)
    model = netspec.build(spec)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point() and tensor.ndim >= 2:
                # conv/linear weights of both signs: all-positive ones grow the map at every kind, and the
                # self-attention kinds (lambda: quadratic in its input) overflowed float32 in the zoo
                tensor.copy_((torch.rand_like(tensor) - 0.5) * 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) * 0.5 + 0.25)
    return spec, model.eval()


def graph_reference(model: torch.nn.Module) -> list[torch.Tensor]:
    """Both outputs for each input batch, flattened: [seg(x1), att(x1), seg(x3), att(x3)]."""
    with torch.no_grad():
        return [output for x in inputs() for output in model(x)]


def test_a_graph_with_two_outputs_exports_to_pt2_returning_both(graph: tuple[netspec.Spec, torch.nn.Module],
                                                               tmp_path: Path) -> None:
    spec, model = graph
    assert isinstance(model, torch.fx.GraphModule)
    program = tmp_path / "graph.pt2"
    assert export.save(spec, program, model=model) == "torch.export program"
    torch.save(inputs(), tmp_path / "inputs.pt")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = subprocess.run(
        [sys.executable, "-I", "-c", LOAD_WITHOUT_NETSPEC, str(program), str(tmp_path / "inputs.pt"),
         str(tmp_path / "outputs.pt")],
        cwd=outside, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    outputs = torch.load(tmp_path / "outputs.pt")
    assert all(isinstance(pair, tuple) and len(pair) == 2 for pair in outputs)
    assert [tuple(pair[0].shape) for pair in outputs] == [(1, 5, 24, 20), (3, 5, 24, 20)]  # dynamic batch
    assert_close([tensor for pair in outputs for tensor in pair], graph_reference(model))


def test_a_graph_with_two_outputs_exports_to_onnx_naming_each(graph: tuple[netspec.Spec, torch.nn.Module],
                                                              tmp_path: Path) -> None:
    for package in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(package, reason=f"the onnx extra is not installed ({package}): pip install 'netspec[onnx]'")
    import onnxruntime

    spec, model = graph
    path = tmp_path / "graph.onnx"
    assert export.save(spec, path, model=model) == "ONNX"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [item.name for item in session.get_inputs()] == ["input"]
    assert [item.name for item in session.get_outputs()] == ["seg", "att"]  # the entries' names, in `outputs` order
    actual = [torch.from_numpy(output) for x in inputs() for output in session.run(["seg", "att"], {"input": x.numpy()})]
    assert_close(actual, graph_reference(model))


def test_pt_is_a_checkpoint_or_with_state_dict_only_a_state_dict(spec: netspec.Spec, model: torch.nn.Module,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    assert export.save(spec, path, model=model) == "netspec checkpoint"
    assert_close(reference(netspec.load_model(path).eval()), reference(model))  # one file: spec and weights
    bare = tmp_path / "bare.pt"
    assert export.save(spec, bare, model=model, state_dict_only=True) == "state dict"
    fresh = netspec.build(spec).eval()
    fresh.load_state_dict(torch.load(bare))
    assert_close(reference(fresh), reference(model))


def netspec_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netspec", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_cli_writes_pt2_and_onnx_quietly(tmp_path: Path) -> None:
    spec_file = tmp_path / "net.yaml"
    spec_file.write_text("input: {channels: 3, size: 16}\nlayers: [{conv: {out: 32}}, cbam, avgpool, {linear: {out: 4}}]\n")
    for name in ("net.pt2", "net.onnx") if _has_onnx() else ("net.pt2",):
        result = netspec_cli("build", str(spec_file), "-o", str(tmp_path / name), "--json")
        assert result.returncode == 0, result.stderr
        assert result.stdout.lstrip().startswith("{") and result.stdout.rstrip().endswith("}")  # JSON only
        assert result.stderr == ""
        assert (tmp_path / name).stat().st_size > 0
    program = torch.export.load(tmp_path / "net.pt2")
    assert program.module()(torch.randn(5, 3, 16, 16)).shape == (5, 4)
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".netspec-")]


def _has_onnx() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def test_missing_onnx_extra_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` now raises ImportError
    out = tmp_path / "model.onnx"
    assert main(["build", str(ROOT / "specs" / "resnet18.yaml"), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"{out}: writing ONNX needs onnxscript: pip install 'netspec[onnx]'\n"
    assert captured.out == ""
    assert os.listdir(tmp_path) == []


def test_unknown_extension_is_a_usage_error(tmp_path: Path) -> None:
    result = netspec_cli("build", "specs/resnet18.yaml", "-o", str(tmp_path / "model.h5"))
    assert result.returncode == 2
    assert "usage:" in result.stderr and "Traceback" not in result.stderr
    assert "model.h5: unknown output format; use .pt (netspec checkpoint, or state dict), .pt2 (torch.export program), .onnx (ONNX)" in result.stderr
    assert os.listdir(tmp_path) == []


def test_program_export_needs_an_input_size(tmp_path: Path) -> None:
    spec_file = tmp_path / "net.yaml"
    spec_file.write_text("input: {channels: 3}\nlayers: [{conv: {out: 8}}, avgpool]\n")
    result = netspec_cli("build", str(spec_file), "-o", str(tmp_path / "net.pt2"))
    assert result.returncode == 1
    assert result.stderr == (
        f"{tmp_path / 'net.pt2'}: exporting a program needs a fixed input size: give `input.size` in the spec\n"
    )
    assert netspec_cli("build", str(spec_file), "-o", str(tmp_path / "net.pt")).returncode == 0  # no size needed
    assert sorted(os.listdir(tmp_path)) == ["net.pt", "net.yaml"]


def test_missing_directory_is_one_line(tmp_path: Path) -> None:
    result = netspec_cli("build", "specs/resnet18.yaml", "-o", str(tmp_path / "missing" / "model.pt"))
    assert result.returncode == 1
    assert result.stderr == f"netspec: [Errno 2] no such directory: '{tmp_path / 'missing'}'\n"


def test_a_failed_export_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = netspec.loads("input: {channels: 3, size: 8}\nlayers: [{conv: {out: 4}}]\n")  # not the zoo: its export
    model = netspec.build(spec).eval()  # took 7-50 s, and the test is about the write, not the program
    path = tmp_path / "model.pt2"
    path.write_bytes(b"previous")

    def broken_save(program: object, target: object) -> None:
        if hasattr(target, "write"):  # netspec saves into memory, then writes the bytes
            target.write(b"partial")
        else:
            Path(target).write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch.export, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export.save(spec, path, model=model)
    assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["model.pt2"]


def test_write_atomic_replaces_with_normal_permissions(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    seen: list[str] = []

    def write(temporary: str) -> None:
        seen.append(temporary)
        assert not path.read_text() == "new"  # the target is untouched while writing
        Path(temporary).write_text("new")

    write_atomic(str(path), write)
    assert path.read_text() == "new"
    assert Path(seen[0]).parent == tmp_path and seen[0].endswith(".txt") and not Path(seen[0]).exists()
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_export_is_in_eval_mode_and_leaves_the_model_as_it_was(tmp_path: Path) -> None:
    spec = netspec.loads("input: {channels: 3, size: 8}\nlayers: [{conv: {out: 4}}, {dropout: {p: 0.9}}, avgpool]\n")
    model = netspec.build(spec).train()
    export.save(spec, tmp_path / "model.pt2", model=model)
    assert model.training and all(module.training for module in model.modules())
    x = torch.randn(2, 3, 8, 8)
    program = torch.export.load(tmp_path / "model.pt2").module()
    with torch.no_grad():
        torch.testing.assert_close(program(x), model.eval()(x))  # running BN statistics, no dropout
