"""Issue 6: `netspec graph SPEC -o net.svg|.dot|.mmd` draws the layers with their output shapes (static, no torch)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from netspec import drawing
from netspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
SE_RESNET50 = ROOT / "specs" / "se_resnet50.yaml"
TRICKY = 'name: a "quoted" <net> & co\ninput: {channels: 3, size: [32, 24]}\nlayers: [{conv: {out: 16}}, se, avgpool, {linear: {out: 5}}]\n'


def netspec_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def dot_edges(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s*(\w+) -> (\w+);$", text, flags=re.M)


def dot_labels(text: str) -> dict[str, str]:
    return {node: label for node, label in re.findall(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"', text, flags=re.M)}


def test_dot_is_a_chain_of_every_layer_with_its_shape() -> None:
    summary = netspec.summary(SE_RESNET50)
    text = drawing.to_dot(summary)
    assert text.startswith("digraph netspec {") and text.rstrip().endswith("}")
    labels = dot_labels(text)
    assert len(labels) == len(summary.rows) + 1
    ids = list(labels)
    assert dot_edges(text) == list(zip(ids, ids[1:]))  # input -> conv1 -> ... -> linear1, nothing else
    assert labels[ids[0]].split("\\n") == ["input", "(N, 3, 224, 224)"]
    for node, row in zip(ids[1:], summary.rows):
        lines = labels[node].split("\\n")
        assert lines[0] == f"{row.name}: {row.kind}"
        assert str(row.info.shape) in lines
        assert f"{row.info.params:,} params" in lines[-1]
    stage4 = labels[ids[6]].split("\\n")
    assert stage4 == ["stage4: stage", "out=2048, depth=3, stride=2, attention=se", "(N, 2048, 7, 7)",
                      "16,544,128 params, 811.11M MACs"]
    assert "28,088,024 params" in text and "per sample" in text


def test_mermaid_is_a_chain_of_every_layer_with_its_shape() -> None:
    summary = netspec.summary(SE_RESNET50)
    text = drawing.to_mermaid(summary)
    lines = text.splitlines()
    assert "flowchart TD" in lines
    nodes = re.findall(r'^\s*(\w+)\["([^"]*)"\]:::(\w+)$', text, flags=re.M)
    assert len(nodes) == len(summary.rows) + 1
    ids = [node for node, _, _ in nodes]
    assert re.findall(r"^\s*(\w+) --> (\w+)$", text, flags=re.M) == list(zip(ids, ids[1:]))
    for (_, label, _), row in zip(nodes[1:], summary.rows):
        assert label.split("<br/>")[0] == f"{row.name}: {row.kind}"
        assert str(row.info.shape) in label.split("<br/>")
    roles = {label.split("<br/>")[0]: role for _, label, role in nodes}
    assert roles["stage1: stage"] == "attention" and roles["conv1: conv"] == "layer" and roles["input"] == "input"
    assert {f"classDef {role}" for role in ("input", "layer", "attention")} <= {" ".join(line.split()[:2]) for line in lines}


def test_labels_are_escaped() -> None:
    summary = netspec.summary(netspec.loads(TRICKY))
    dot = drawing.to_dot(summary)
    assert 'label="a \\"quoted\\" <net> & co: ' in dot
    mermaid = drawing.to_mermaid(summary)
    assert "#quot;quoted#quot; #lt;net#gt; #amp; co" in mermaid
    assert '"' not in mermaid.splitlines()[0]
    for line in mermaid.splitlines()[2:]:  # inside node labels no raw quote but the delimiters
        assert line.count('"') in (0, 2)


def test_unknown_input_size_draws_unknown_shapes() -> None:
    summary = netspec.summary(netspec.loads("input: {channels: 3}\nlayers: [{conv: {out: 8}}, avgpool]\n"))
    text = drawing.to_dot(summary)
    assert "(N, 8, ?, ?)" in text and "? MACs" in text


@pytest.mark.parametrize("extension", [".dot", ".mmd"])
def test_cli_writes_text_formats(tmp_path: Path, extension: str) -> None:
    out = tmp_path / f"net{extension}"
    result = netspec_cli("graph", str(SE_RESNET50), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {out}\n"
    summary = netspec.summary(SE_RESNET50)
    expected = drawing.to_dot(summary) if extension == ".dot" else drawing.to_mermaid(summary)
    assert out.read_text() == expected
    assert os.listdir(tmp_path) == [out.name]


def test_cli_prints_dot_without_output_and_follows_width() -> None:
    result = netspec_cli("graph", "specs/resnet18.yaml", "--width", "0.5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("digraph netspec {")
    assert "(N, 256, 7, 7)" in result.stdout and "(N, 512, 7, 7)" not in result.stdout


def test_graph_needs_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from netspec.cli import main; code = main(sys.argv[1:]); "
        "assert 'torch' not in sys.modules, 'graph imported torch'; sys.exit(code)"
    )
    out = tmp_path / "net.mmd"
    result = subprocess.run([sys.executable, "-c", code, "graph", str(SE_RESNET50), "-o", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "(N, 2048, 7, 7)" in out.read_text()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` is not installed (apt install graphviz)")
def test_cli_writes_svg_with_graphviz(tmp_path: Path) -> None:
    out = tmp_path / "net.svg"
    result = netspec_cli("graph", str(SE_RESNET50), "-o", str(out))
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and svg.rstrip().endswith("</svg>")
    for shape in ("(N, 3, 224, 224)", "(N, 2048, 7, 7)", "(N, 1000)"):
        assert shape in svg
    assert svg.count('class="node"') == 9
    assert os.listdir(tmp_path) == ["net.svg"]


def test_svg_without_graphviz_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "net.svg"
    assert main(["graph", str(SE_RESNET50), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"{out}: drawing SVG needs Graphviz's `dot` on PATH: install Graphviz (apt install graphviz")
    assert not out.exists() and os.listdir(tmp_path) == ["bin"]


def test_failing_dot_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text("#!/bin/sh\necho 'Error: something broke' >&2\nexit 3\n")
    (fake / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    out = tmp_path / "net.svg"
    assert main(["graph", str(SE_RESNET50), "-o", str(out)]) == 1
    assert capsys.readouterr().err == f"{out}: Graphviz's `dot` failed (exit 3): Error: something broke\n"
    assert not out.exists()


def test_unknown_extension_is_a_usage_error(tmp_path: Path) -> None:
    result = netspec_cli("graph", str(SE_RESNET50), "-o", str(tmp_path / "net.png"))
    assert result.returncode == 2
    assert "usage:" in result.stderr and "Traceback" not in result.stderr
    assert "net.png: unknown drawing format; use .svg (needs Graphviz), .dot or .gv (Graphviz DOT), .mmd (Mermaid)" in result.stderr
    assert os.listdir(tmp_path) == []


def test_invalid_spec_is_reported_like_check(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {channels: 3, size: 16}\nlayers:\n  - conv: {out: 8}\n  - se: {reduction: 16}\n")
    result = netspec_cli("graph", str(bad), "-o", str(tmp_path / "net.dot"))
    assert result.returncode == 1
    assert result.stderr == f"{bad}:4:21: layers[1].se.reduction: must be <= 8 (the input has 8 channels)\n"
    assert sorted(os.listdir(tmp_path)) == ["bad.yaml"]
