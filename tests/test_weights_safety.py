"""Issue 23: weights land only where they belong, and weights files are read with the care spec files get.

Alignment: a checkpoint whose widths differ (doubled, or shifted by a stage) must never be copied into the
layer whose shapes happen to fit: every pair is at the same place of the architecture, and with other
shapes it is a reported mismatch. Files: FIFOs never block, compressed zip records are refused before they
are inflated, tensors that cannot be copied (sparse, nested, quantized, complex, a damaged
``num_batches_tracked``) and values that are not weights (NaN, a negative running variance) are refused
with a line naming the tensor, ``-o`` never replaces an input or a symlink, and text from files is escaped.
"""
from __future__ import annotations

import io
import os
import signal
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch

import netspec
from netspec.cli import main
from netspec.weights import WeightsError, model_units

NET = """\
input: {channels: 3, size: 16}
layers:
  - conv: {out: STEM, kernel: 3}
  - stage: {block: basic, out: W1, depth: 2ATT}
  - stage: {block: basic, out: W2, depth: 2, stride: 2ATT}
  - stage: {block: basic, out: W3, depth: 2, stride: 2ATT}
  - avgpool
  - linear: {out: 10}
"""


def net(stem: int, widths: tuple[int, int, int], attention: str | None = None, seed: int = 0) -> torch.nn.Module:
    text = NET.replace("STEM", str(stem)).replace("ATT", f", attention: {attention}" if attention else "")
    for index, width in enumerate(widths, 1):
        text = text.replace(f"W{index}", str(width))
    return netspec.build(netspec.loads(text), seed=seed)


def torchvision_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same tensors under other names (``layerN`` for ``stageN``): names never decide a pairing."""
    return {key.replace("stage", "layer"): tensor for key, tensor in state.items()}


def place(name: str) -> str:
    """Where a module sits: its stage (``stage2``/``layer2`` -> ``2``) or the stem or head."""
    top = name.split(".")[0]
    return top.replace("stage", "").replace("layer", "") if top.startswith(("stage", "layer")) else top


def unchanged(model: torch.nn.Module, before: dict[str, torch.Tensor], prefix: str = "") -> bool:
    return all(torch.equal(tensor, before[key]) for key, tensor in model.state_dict().items() if key.startswith(prefix))


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: tensor.clone() for key, tensor in model.state_dict().items()}


# --- alignment: nothing lands in the wrong layer ------------------------------------------------------------


def test_a_width_doubled_checkpoint_is_all_mismatches_and_nothing_is_copied() -> None:
    model = net(16, (16, 32, 64))
    before = snapshot(model)
    source = torchvision_names(net(32, (32, 64, 128), seed=1).state_dict())  # every width x2
    report = netspec.load_weights(model, source)
    assert not report.matched and not report.new and not report.unused  # the shapes of stage1 fit stage2: unused
    assert len(report.mismatched) == len(model_units(model))
    assert all(place(m.model.name) == place(m.source.name) for m in report.mismatched)  # each at its own place
    assert unchanged(model, before)
    with pytest.raises(WeightsError):
        netspec.load_weights(model, source, strict=True)


def test_a_stage_shifted_checkpoint_does_not_land_one_stage_later() -> None:
    """The source's stage k has exactly the shapes of the model's stage k+1 (its widths are shifted by one)."""
    model = net(16, (16, 32, 64))
    before = snapshot(model)
    source = torchvision_names(net(16, (32, 64, 128), seed=1).state_dict())
    report = netspec.load_weights(model, source)
    assert all(place(a.name) == place(b.name) for a, b in report.matched)
    assert all(place(m.model.name) == place(m.source.name) for m in report.mismatched)
    assert {place(a.name) for a, _ in report.matched} == {"conv1"}  # the stem is the same: it loads
    assert unchanged(model, before, "stage") and unchanged(model, before, "linear1")
    assert len(report.unused) == 2  # the source's stage1 has a shortcut the model's lacks


@pytest.mark.parametrize("attention", ["se", "eca", "cbam"])
def test_attention_added_keeps_every_trunk_weight_and_width_changes_still_copy_nothing(attention: str) -> None:
    trunk = net(16, (16, 32, 64), seed=1)
    model = net(16, (16, 32, 64), attention, seed=2)
    report = netspec.load_weights(model, torchvision_names(trunk.state_dict()))
    assert len(report.matched) == len(model_units(trunk)) and not report.unused and not report.mismatched
    assert report.new and all(".attention." in unit.name for unit in report.new)
    state = model.state_dict()
    assert all(torch.equal(state[key], tensor) for key, tensor in trunk.state_dict().items())
    wide = net(32, (32, 64, 128), seed=3)  # and the same trunk twice as wide: nothing fits, nothing moves
    before = snapshot(model)
    report = netspec.load_weights(model, wide.state_dict())
    assert not report.matched and unchanged(model, before)
    assert all(place(m.model.name) == place(m.source.name) for m in report.mismatched)


def test_dry_run_reports_the_same_and_copies_nothing() -> None:
    model, source = net(16, (16, 32, 64), "se"), net(16, (16, 32, 64), seed=1).state_dict()
    before = snapshot(model)
    planned = netspec.load_weights(model, source, dry_run=True)
    assert unchanged(model, before)
    done = netspec.load_weights(model, source)
    assert planned.to_dict() == done.to_dict() and not unchanged(model, before)


# --- files: never blocking, never inflating ------------------------------------------------------------------


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail the test instead of hanging forever (the bug was a blocking open of a FIFO)."""
    def expired(*_: object) -> None:
        raise TimeoutError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "net.yaml"
    path.write_text("input: {channels: 3, size: 8}\nlayers: [{conv: {out: 4, kernel: 3}}, avgpool, {linear: {out: 2}}]\n")
    return path


def test_a_fifo_is_refused_at_once_as_weights_checkpoint_or_spec(tmp_path: Path) -> None:
    spec = spec_file(tmp_path)
    for name in ("w.pt", "net.pt", "spec.yaml"):
        os.mkfifo(tmp_path / name)
    with deadline(30):
        status, _, err = run_cli("build", str(spec), "--weights", str(tmp_path / "w.pt"))
        assert status == 1 and err == f"{tmp_path / 'w.pt'}: cannot read it: a pipe, not a regular file\n"
        status, _, err = run_cli("build", str(tmp_path / "net.pt"))
        assert status == 1 and err == f"{tmp_path / 'net.pt'}: cannot read it: a pipe, not a regular file\n"
        with pytest.raises(WeightsError, match="a pipe, not a regular file"):
            netspec.load_model(tmp_path / "net.pt")
        status, _, err = run_cli("build", str(tmp_path / "spec.yaml"))
        assert status == 1 and "a pipe, not a regular file" in err


def test_a_compressed_zip_record_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"weight": torch.zeros(512, 512)}, good)  # 1 MiB of zeros: a few KB once deflated
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    assert bomb.stat().st_size < good.stat().st_size // 10
    with pytest.raises(WeightsError) as raised:
        netspec.load_weights(torch.nn.Linear(512, 512, bias=False), bomb)
    assert str(raised.value).startswith(f"{bomb}: refused: record ") and "is compressed" in str(raised.value)
    status, _, err = run_cli("build", str(spec_file(tmp_path)), "--weights", str(bomb))
    assert status == 1 and err.count("\n") == 1 and "is compressed" in err
    data = bytearray(bomb.read_bytes())  # the central directory says "stored", the local headers still deflate
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        data[at + 10:at + 12] = b"\x00\x00"
        at = data.find(b"PK\x01\x02", at + 4)
    lying = tmp_path / "lying.pt"
    lying.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="is compressed"):
        netspec.load_weights(torch.nn.Linear(512, 512, bias=False), lying)


# --- tensors that cannot, or must not, be copied ---------------------------------------------------------------


def checkpoint_with(tmp_path: Path, key: str, tensor: torch.Tensor) -> tuple[Path, Path]:
    """A netspec checkpoint and a plain state dict of the spec_file net, ``key`` replaced by ``tensor``."""
    spec = spec_file(tmp_path)
    model = netspec.build(spec, seed=0)
    state = dict(model.state_dict())
    state[key] = tensor
    plain = tmp_path / "plain.pt"
    torch.save(state, plain)
    full = tmp_path / "full.pt"
    netspec.save(model, full)
    data = torch.load(full, weights_only=True)
    torch.save({**data, "state_dict": state}, full)
    return plain, full


BAD_TENSORS = {
    "sparse": ("conv1.conv.weight", lambda: torch.zeros(4, 3, 3, 3).to_sparse(), "a sparse tensor"),
    "nested": ("linear1.bias", lambda: torch.nested.nested_tensor([torch.ones(1), torch.ones(1)]), "a nested tensor"),
    "quantized": ("linear1.weight", lambda: torch.quantize_per_tensor(torch.ones(2, 4), 0.1, 0, torch.qint8),
                  "a quantized tensor"),
    "complex": ("linear1.weight", lambda: torch.ones(2, 4, dtype=torch.complex64), "a complex tensor"),
    "counter": ("conv1.norm.num_batches_tracked", lambda: torch.zeros(3, dtype=torch.long),
                "shape (3,) where the model's is ()"),
    "nan": ("conv1.conv.weight", lambda: torch.full((4, 3, 3, 3), float("nan")), "holds NaN values"),
    "inf": ("linear1.bias", lambda: torch.tensor([1.0, float("inf")]), "holds infinite values"),
    "variance": ("conv1.norm.running_var", lambda: -torch.ones(4), "holds negative values"),
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", list(BAD_TENSORS))
def test_tensors_that_are_not_plain_weights_are_refused_naming_the_tensor(case: str, tmp_path: Path) -> None:
    key, make, message = BAD_TENSORS[case]
    plain, full = checkpoint_with(tmp_path, key, make())
    model = netspec.build(spec_file(tmp_path), seed=1)
    before = snapshot(model)
    with pytest.raises(WeightsError) as raised:
        netspec.load_weights(model, plain)
    assert str(raised.value).startswith(f"{plain}: tensor {key!r}") and message in str(raised.value)
    assert "\n" not in str(raised.value) and unchanged(model, before)  # refused before anything was copied
    with pytest.raises(WeightsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        netspec.load_model(full)
    for argv in (["build", str(spec_file(tmp_path)), "--weights", str(plain)], ["build", str(full)]):
        status, _, err = run_cli(*argv)
        assert status == 1 and err.count("\n") == 1 and key in err and "Traceback" not in err, err


# --- files the user points at -----------------------------------------------------------------------------------


def test_output_never_replaces_the_weights_it_reads(tmp_path: Path) -> None:
    spec = spec_file(tmp_path)
    weights = tmp_path / "w.pt"
    torch.save(netspec.build(spec).state_dict(), weights)
    original = weights.read_bytes()
    (tmp_path / "link.pt").symlink_to(weights)
    for output in (weights, tmp_path / "." / "w.pt", tmp_path / "link.pt"):
        status, _, err = run_cli("build", str(spec), "--weights", str(weights), "-o", str(output))
        assert status == 1 and err == f"{output}: this is the --weights file; choose another output file\n"
    assert weights.read_bytes() == original


def test_output_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    spec = spec_file(tmp_path)
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "model.pt"
    target.write_bytes(b"an old model")
    link = tmp_path / "latest.pt"
    link.symlink_to(Path("runs") / "model.pt")  # relative, as `ln -s` makes them
    status, _, err = run_cli("build", str(spec), "--seed", "1", "-o", str(link))
    assert status == 0, err
    assert link.is_symlink() and os.readlink(link) == os.path.join("runs", "model.pt")
    assert netspec.load_model(target).state_dict().keys() == netspec.build(spec).state_dict().keys()
    assert sorted(os.listdir(tmp_path / "runs")) == ["model.pt"]  # no temporary left beside it
    dangling = tmp_path / "next.pt"
    dangling.symlink_to(tmp_path / "runs" / "new.pt")
    assert run_cli("build", str(spec), "-o", str(dangling))[0] == 0
    assert dangling.is_symlink() and (tmp_path / "runs" / "new.pt").is_file()


def test_dash_o_pt_writes_what_build_reads_and_state_dict_the_bare_one(tmp_path: Path) -> None:
    spec = spec_file(tmp_path)
    out = tmp_path / "x.pt"
    assert run_cli("build", str(spec), "--seed", "2", "-o", str(out))[0] == 0
    status, printed, err = run_cli("build", str(out))
    assert status == 0 and printed.startswith(f"{out}: netspec checkpoint"), err
    assert run_cli("build", str(spec), "--seed", "2", "-o", str(out), "--state-dict")[0] == 0
    assert set(torch.load(out, weights_only=True)) == set(netspec.build(spec).state_dict())
    status, _, err = run_cli("build", str(spec), "--state-dict")
    assert status == 2 and err == "netspec build: --state-dict needs -o OUT.pt\n"


# --- text from files is escaped ---------------------------------------------------------------------------------


def test_text_from_checkpoints_reaches_the_terminal_escaped(tmp_path: Path) -> None:
    spec = spec_file(tmp_path)
    model = netspec.build(spec)
    path = tmp_path / "ck.pt"
    netspec.save(model, path)
    data = torch.load(path, weights_only=True)
    torch.save({**data, "netspec": "\x1b[2J\x1b]0;pwned\x07"}, path)
    status, printed, _ = run_cli("build", str(path))
    assert status == 0 and "\x1b" not in printed and "\\x1b[2J" in printed
    source = {f"\x1b[31m{key}": tensor for key, tensor in model.state_dict().items()}
    source["\x1b]0;extra\x07.weight"] = torch.ones(3)
    weights = tmp_path / "w.pt"
    torch.save(source, weights)
    status, printed, _ = run_cli("build", str(spec), "--weights", str(weights))
    assert status == 0 and "\x1b" not in printed and "\x07" not in printed and "\\x1b]0;extra\\x07" in printed
