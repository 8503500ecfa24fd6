"""``netspec import`` / ``netspec.from_ultralytics``: Ultralytics model YAML read into netspec specs (issue 19).

The YAML files under tests/data/ultralytics/ have the rows and scale tables of Ultralytics 8.4's official detect
models (see docs/how-to/import-a-model.md). The counts are Ultralytics 8.4.190's with ``nc: 80``; a throwaway script loaded a
real ``DetectionModel``'s weights into the imported spec and compared outputs (see docs/how-to/attention-yolo.md).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import netspec
from netspec.importers import SOURCES, import_source
from netspec.importers.ultralytics import MODULES, convert
from netspec.registry import KINDS

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "ultralytics"
YOLOV8 = DATA / "yolov8.yaml"
HEADS = {"detect", "c3", "c3k2", "c2psa"} <= set(KINDS)
"""The YOLO kinds (another branch of issue 19) are registered: the whole detectors can be built."""
needs_heads = pytest.mark.skipif(not HEADS, reason="the detect/c3/c3k2/c2psa kinds are not registered")

COUNTS = {
    "yolov8": [3_157_200, 11_166_560, 25_902_640, 43_691_520, 68_229_648],
    "yolo11": [2_624_080, 9_458_752, 20_114_688, 25_372_160, 56_966_176],
    "yolov5": [2_654_816, 9_153_152, 25_111_456, 53_225_024, 97_276_448],
    "yolov8-p2": [3_354_144, 10_884_336, 25_082_496, 42_888_080, 66_637_536],
    "yolov8-p6": [4_984_352, 17_911_792, 44_887_488, 62_384_016, 97_423_072],  # C2 blocks
    "yolov5-p6": [4_334_896, 15_309_328, 41_222_064, 86_099_920, 155_544_432],
    "yolov8-ghost": [1_865_316, 5_960_072, 10_336_312, 14_277_872, 22_229_308],  # GhostConv, C3Ghost
    "yolov8-ghost-p2": [2_033_944, 5_562_080, 9_031_728, 12_214_448, 18_664_776],
    "yolov8-ghost-p6": [2_901_100, 9_520_008, 18_002_904, 21_227_584, 33_057_852],
}
"""Ultralytics 8.4.190 parameter counts at scales n, s, m, l, x (DESIGN.md 6c; the p2/p6/ghost rows measured with
the real package): every official v5u/v8/11 detect YAML."""


def netspec_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def headless(text: str) -> str:
    """``text`` without its Detect row (the backbone and neck netspec has had since yolov8n_cbam.yaml)."""
    return "\n".join(line for line in text.splitlines() if "Detect" not in line) + "\n"


# ------------------------------------------------------------------------------------------- conversion


def test_names_replace_indices_and_comments_are_kept() -> None:
    text = YOLOV8.read_text() if HEADS else headless(YOLOV8.read_text())
    imported = convert(text.encode(), name=str(YOLOV8))
    text = imported.text
    assert "# YOLOv8 detector, P3-P5 outputs" in text  # the header
    assert "  # neck: top-down then bottom-up, and the head" in text  # a section comment
    assert "[from, repeats, module, args]" not in text  # Ultralytics' format line says nothing here
    assert "  n: {depth: 0.33, width: 0.25, max_channels: 1024}" in text  # the scale table
    assert next(line for line in text.splitlines() if line.startswith("  s: {")).endswith("# 11,166,560 params")
    assert "\nscale: n\n" in text
    lines = text.splitlines()
    first = lines.index(next(line for line in lines if line.startswith("  - conv: {out: 64")))
    assert lines[first].endswith("# 0-P1/2")
    assert any(line.startswith("  - c2f: {out: 128, depth: 3, shortcut: true}") and line.endswith("# 2")
               for line in lines)
    assert "    from: [upsample_10, c2f_6]" in text  # [-1, 6]
    assert "    from: [conv_19, sppf_9]" in text  # [-1, 9]
    wired = [line.split("#")[1].strip() for line in lines if line.startswith("  - concat")]
    assert wired[0] == "11: join backbone P4"
    if HEADS:
        assert "    from: [p3, p4, p5]" in text  # [15, 18, 21]
        assert {"p3", "p4", "p5"} <= {layer.name for layer in imported.spec.layers}
    assert netspec.loads(text) == imported.spec
    assert imported.notes and "scale n" in imported.notes[0]


def test_the_backbone_and_neck_count_and_the_detector_is_specs_yolov8n() -> None:
    """Without Detect, yolov8.yaml's layers 0-21 count 2,259,536 (Ultralytics at n); with it, the import computes
    specs/yolov8n.yaml's function (its weights load strictly, equal outputs in both modes)."""
    assert netspec.check(netspec.from_ultralytics(headless(YOLOV8.read_text()))).params == 2_259_536
    if not HEADS:
        return
    spec = netspec.from_ultralytics(YOLOV8)
    small = {"input": spec.input.model_copy(update={"size": (64, 64)})}
    model = netspec.build(spec.model_copy(update=small), seed=0)
    reference_spec = netspec.load(ROOT / "specs/yolov8n.yaml")
    reference = netspec.build(reference_spec.model_copy(update=small), seed=1)
    assert netspec.load_weights(model, reference.state_dict(), strict=True).complete
    x = torch.randn(1, 3, 64, 64)
    for train in (True, False):
        model.train(train)
        reference.train(train)
        with torch.no_grad():
            for a, b in zip(_outputs(model(x)), _outputs(reference(x)), strict=True):
                assert torch.equal(a, b)


def test_dump_load_round_trip_and_the_scale_flag() -> None:
    text = headless(YOLOV8.read_text())
    for letter, (depth, width, cap) in {"n": (0.33, 0.25, 1024), "m": (0.67, 0.75, 768), "x": (1.0, 1.25, 512)}.items():
        spec = convert(text, scale=letter).spec
        assert spec.scale == letter
        applied = spec.resolved_scale
        assert (applied.depth, applied.width, applied.max_channels) == (depth, width, cap)
        assert netspec.loads(spec.to_yaml()) == spec
    assert netspec.from_ultralytics(text, scale="s").resolved_scale.width == 0.5


def test_scale_from_the_file_name_as_ultralytics(tmp_path: Path) -> None:
    path = tmp_path / "yolov8s.yaml"
    path.write_text(headless(YOLOV8.read_text()))
    imported = import_source(str(path))
    assert imported.spec.scale == "s" and imported.spec.name == "yolov8s"
    assert "file name" in imported.notes[0]


def test_attention_modules_under_users_names() -> None:
    base = headless(YOLOV8.read_text())
    rows = {
        "CBAM, [1024, 7]": {"cbam": {}},  # Ultralytics-style CBAM(c1, kernel_size): the kernel stays 7
        "CBAM, [7]": {"cbam": {}},
        "CBAM, [256, 3]": {"cbam": {"kernel": 3}},  # the width at scale n
        "SE, [1024, 8]": {"se": {"reduction": 8}},
        "SEAttention, [1024]": {"se": {}},
        "ECA, [1024]": {"eca": {"kernel": 3}},  # the usual ECA(c1, k_size=3)
        "ECAAttention, [5]": {"eca": {"kernel": 5}},
        "CoordAtt, [1024, 1024, 16]": {"coord": {"reduction": 16}},
        "CA, [1024]": {"coord": {}},
        "SimAM, [0.001]": {"simam": {"e_lambda": 0.001}},
    }
    for row, entry in rows.items():
        text = base.replace("  - [-1, 1, SPPF, [1024, 5]] # 9", f"  - [-1, 1, SPPF, [1024, 5]] # 9\n  - [-1, 1, {row}]")
        text = text.replace("[[-1, 9], 1, Concat", "[[-1, 10], 1, Concat").replace("[[-1, 12]", "[[-1, 13]")
        text = text.replace("[[-1, 6], 1", "[[-1, 6], 1").replace("[[-1, 4], 1", "[[-1, 4], 1")
        spec = netspec.from_ultralytics(text)
        kind = next(iter(entry))
        layer = spec.layers[10]
        assert layer.kind == kind, row
        expected = type(layer)(**entry[kind]).to_entry()
        assert layer.model_copy(update={"name": None}).to_entry() == expected, row
        assert layer.name == f"{kind}_10"  # read by the P5 concat
        netspec.check(spec)


# ------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("row", "message", "token"), [
    ("[-1, 1, MyBlock, [64]]", "layer 10: unknown module 'MyBlock'; netspec imports C2, C2PSA, C2f, C3", "MyBlock"),
    ("[[-1, 25], 1, Concat, [1]]", "layer 10: `from` 25 refers to a later layer", "25"),
    ("[-12, 1, Conv, [64]]", "layer 10: `from` -12 is out of range: there are 10 layers before it", "-12"),
    ("[-1, 2, Conv, [64]]", "layer 10: Conv cannot repeat (repeats 2)", "2, Conv"),
    ("[-1, 1, C2f, [64, True, 2]]", "layer 10: C2f: groups 2 is not supported", "2]]"),
    ("[-1, 1, CBAM, [512, 7]]", "layer 10: CBAM: unexpected argument(s) [512, 7]", "512"),
])
def test_located_errors(row: str, message: str, token: str) -> None:
    text = headless(YOLOV8.read_text()).replace("head:\n", f"head:\n  - {row}\n", 1)
    line = text.splitlines().index(f"  - {row}") + 1
    column = len("  - ") + row.index(token) + 1
    with pytest.raises(netspec.SpecError) as caught:
        convert(text, name="mine.yaml")
    problem = caught.value.problems[0]
    assert message in problem.message
    assert (problem.file, problem.line, problem.column) == ("mine.yaml", line, column)
    if "unknown module" in message:
        assert all(name in problem.message for name in MODULES)


def test_a_mismatch_netspec_finds_is_located_at_the_row() -> None:
    """C2f on a Concat whose inputs differ in size: netspec's shape problem, at the Ultralytics row."""
    text = headless(YOLOV8.read_text()).replace("[[-1, 6], 1, Concat, [1]]", "[[-1, 4], 1, Concat, [1]]")
    with pytest.raises(netspec.SpecError) as caught:
        convert(text, name="mine.yaml")
    problem = caught.value.problems[0]
    assert problem.line == text.splitlines().index("  - [[-1, 4], 1, Concat, [1]] # join backbone P4") + 1
    assert "layer 11 (Concat): concat needs equal spatial sizes" in problem.message


def test_not_an_ultralytics_file() -> None:
    with pytest.raises(netspec.SpecError, match="not an Ultralytics model YAML"):
        convert("nc: 80\n")
    with pytest.raises(netspec.SpecError, match="a netspec spec already"):
        convert((ROOT / "specs" / "resnet18.yaml").read_text())
    with pytest.raises(netspec.SpecError, match="no scale 'q'"):
        convert(YOLOV8.read_text(), scale="q")


def test_the_dispatch_table_is_keyed_by_prefix() -> None:
    assert "ultralytics" in SOURCES
    imported = import_source(f"ultralytics:{YOLOV8}") if HEADS else None
    if imported is not None:
        assert imported.spec.layers[-1].kind == "detect"
    with pytest.raises(netspec.SpecError, match="no such file, and not a known source prefix"):
        import_source("nowhere:thing")


# ------------------------------------------------------------------------------------------- command line


def test_cli_prints_writes_and_never_writes_on_error(tmp_path: Path) -> None:
    source = tmp_path / "mine.yaml"
    source.write_text(headless(YOLOV8.read_text()))
    printed = netspec_cli("import", str(source), "--scale", "s")
    assert printed.returncode == 0, printed.stderr
    assert "\nscale: s\n" in printed.stdout
    assert netspec.loads(printed.stdout) == netspec.from_ultralytics(source, scale="s")
    out = tmp_path / "spec.yaml"
    written = netspec_cli("import", str(source), "-o", str(out))
    assert written.returncode == 0, written.stderr
    assert f"wrote {out}" in written.stdout and "scale n" in written.stderr
    assert netspec.load(out) == netspec.from_ultralytics(source)
    before = out.read_bytes()
    source.write_text(source.read_text().replace("SPPF", "SPPFF"))
    failed = netspec_cli("import", str(source), "-o", str(out))
    assert failed.returncode == 1
    assert f"{source}:" in failed.stderr and "unknown module 'SPPFF'" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert out.read_bytes() == before  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml", "spec.yaml"]  # no temporary left
    clobber = netspec_cli("import", str(source), "-o", str(source))
    assert clobber.returncode == 1 and "this is the file being imported" in clobber.stderr
    assert "SPPFF" in source.read_text()
    assert netspec_cli("import", str(tmp_path / "missing.yaml")).returncode == 1
    assert netspec_cli("import").returncode == 2


# ------------------------------------------------------------------------------------------- whole detectors


@needs_heads
@pytest.mark.parametrize("stem", sorted(COUNTS))
def test_official_yaml_round_trips_at_ultralytics_counts(stem: str) -> None:
    """Import, dump, load, check at every scale: Ultralytics' parameter counts; built at scale n, the model holds
    that many parameters."""
    path = DATA / f"{stem}.yaml"
    for letter, count in zip("nsmlx", COUNTS[stem]):
        spec = netspec.from_ultralytics(path, scale=letter)
        again = netspec.loads(spec.to_yaml())
        assert again == spec
        assert netspec.check(again).params == count, (stem, letter)
        if letter == "n":
            assert sum(p.numel() for p in netspec.build(again).parameters()) == count, stem


@needs_heads
@pytest.mark.parametrize("stem", ["yolov8-p2", "yolov5-p6", "yolov8-p6", "yolov8-ghost-p2", "yolov8-ghost-p6"])
def test_more_official_detect_yamls_import_and_build(stem: str) -> None:
    imported = convert((DATA / f"{stem}.yaml").read_text(), name=f"{stem}.yaml")
    assert netspec.loads(imported.spec.to_yaml()) == imported.spec
    names = {layer.name for layer in imported.spec.layers}
    levels = {"p2", "p3", "p4", "p5"} if stem.endswith("p2") else {"p3", "p4", "p5", "p6"}
    assert levels <= names and set(imported.spec.layers[-1].inputs) == levels
    netspec.check(imported.spec)


def test_ghost_and_c2_rows_map_to_their_kinds() -> None:
    """GhostConv keeps its kernel and stride, C3Ghost its repeats as depth; C2's ``False`` is its shortcut."""
    ghost = netspec.from_ultralytics(DATA / "yolov8-ghost.yaml")
    assert ghost.layers[1].kind == "ghostconv" and (ghost.layers[1].out, ghost.layers[1].kernel,
                                                     ghost.layers[1].stride) == (128, 3, 2)
    assert ghost.layers[2].kind == "c3ghost" and (ghost.layers[2].out, ghost.layers[2].depth) == (128, 3)
    p6 = netspec.from_ultralytics(DATA / "yolov8-p6.yaml")
    c2 = next(layer for layer in p6.layers if layer.kind == "c2")
    assert (c2.out, c2.depth, c2.shortcut) == (768, 3, False)


def _outputs(result: object) -> list[torch.Tensor]:
    """Every tensor of a model's output (dicts by key, tuples in order)."""
    if isinstance(result, dict):
        return [t for key in sorted(result) for t in _outputs(result[key])]
    if isinstance(result, (list, tuple)):
        return [t for value in result for t in _outputs(value)]
    return [result]  # type: ignore[list-item]


@pytest.mark.slow
@needs_heads
@pytest.mark.parametrize(("stem", "scale"), [("yolov8", "n"), ("yolo11", "n"), ("yolov5", "n"), ("yolo11", "m"),
                                             ("yolov8-p6", "n"), ("yolov8-ghost", "n")])
def test_imported_detector_computes_ultralytics_function(stem: str, scale: str) -> None:
    """The imported spec's model, given the weights of the Ultralytics-layout reference of the same YAML
    (``tests/ultralytics_references.py``, checked against the real package), computes its training dict and its
    eval output, on a non-square input (at scale m, YOLO11's C3k2 use C3k blocks, as parse_model forces)."""
    references = pytest.importorskip("ultralytics_references")
    torch.manual_seed(0)
    reference = references.DetectionModel(stem, scale)
    generator = torch.Generator().manual_seed(1)
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    model = netspec.build(netspec.from_ultralytics(DATA / f"{stem}.yaml", scale=scale), seed=0)
    assert netspec.load_weights(model, reference.state_dict(), strict=True).complete
    size = (128, 192) if stem.endswith("p6") else (64, 96)  # divisible by the deepest stride, non-square
    x = torch.randn(2, 3, *size, generator=generator)
    for train in (True, False):
        reference.train(train)
        model.train(train)
        with torch.no_grad():
            expected, got = reference(x), model(x)
        if not train and isinstance(expected, tuple):
            expected = expected[0]  # Ultralytics' eval output is (decoded, training dict); netspec's the decoded
        assert len(_outputs(got)) == len(_outputs(expected))
        for a, b in zip(_outputs(got), _outputs(expected)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * max(1.0, b.abs().max().item()))


# ------------------------------------------------------------------------------------------- hostile input


_VALUES = st.one_of(st.integers(-3, 2048), st.booleans(), st.none(), st.floats(allow_nan=True),
                    st.sampled_from(["nc", "None", "nearest", "bilinear", "True", "[1, 2]", "1e999", "(("]),
                    st.lists(st.integers(-2, 8), max_size=3))
_ROWS = st.lists(st.tuples(
    st.one_of(st.integers(-4, 12), st.lists(st.integers(-4, 12), min_size=0, max_size=4), st.text(max_size=3)),
    st.one_of(st.integers(-1, 4), st.booleans(), st.floats(0, 3)),
    st.one_of(st.sampled_from(sorted(MODULES)), st.sampled_from(["C2fAttn", "RepC3", "nn.Identity", ""])),
    st.one_of(st.lists(_VALUES, max_size=5), st.integers(), st.none()),
), min_size=1, max_size=8)


@given(rows=_ROWS, nc=st.one_of(st.integers(-1, 100), st.none(), st.text(max_size=3)))
def test_any_rows_give_a_spec_or_located_errors_never_a_traceback(rows: list[tuple], nc: object) -> None:
    import yaml

    text = yaml.safe_dump({"nc": nc, "scales": {"n": [0.33, 0.25, 1024]},
                           "backbone": [list(row) for row in rows[:4]], "head": [list(row) for row in rows[4:]]})
    try:
        imported = convert(text, name="fuzz.yaml")
    except netspec.SpecError as error:
        assert error.problems and all(problem.line is not None for problem in error.problems), str(error)
    else:
        assert netspec.loads(imported.text) == imported.spec


def test_verify_proves_against_ultralytics_or_says_what_it_needs(tmp_path: Path) -> None:
    """``--verify`` builds Ultralytics' own model of the file: with the package installed it loads that model's
    weights into the spec's model and compares outputs; without it, exit 1 naming the package, nothing written."""
    out = tmp_path / "spec.yaml"
    result = netspec_cli("import", str(DATA / "yolov5.yaml"), "--verify", "-o", str(out))
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        assert result.returncode == 1
        assert "install the ultralytics package" in result.stderr and "Traceback" not in result.stderr
        assert not out.exists()
    else:
        assert result.returncode == 0, result.stderr
        assert "verified against Ultralytics" in result.stderr and "2,654,816 parameters" in result.stderr
        assert out.exists()


def test_unreadable_sources_are_one_line_errors(tmp_path: Path) -> None:
    import os

    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    cases = {str(folder): "a directory, not a regular file", str(tmp_path / "missing.yaml"): "no such file",
             str(ROOT / "pyproject.toml"): "not a file netspec can import"}
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.yaml")  # nobody writes to it: reading it must not block
        cases[str(tmp_path / "pipe.yaml")] = "a pipe, not a regular file"
    for source, message in cases.items():
        with pytest.raises(netspec.SpecError, match=message):
            import_source(source)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (5 << 20))
    with pytest.raises(netspec.SpecError, match="too large"):
        import_source(str(big))


def test_an_option_a_source_does_not_take_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def plain(target: str) -> object:
        raise AssertionError("not called")

    monkeypatch.setitem(SOURCES, "plain", plain)
    with pytest.raises(netspec.SpecError, match="--scale does not apply to this source"):
        import_source("plain:thing", scale="s")


@pytest.mark.skipif("segment" not in KINDS, reason="the segment kind is not registered")
@pytest.mark.parametrize(("stem", "count"), [("yolov8-seg", 3_409_968), ("yolo11-seg", 2_876_848),
                                             ("yolov8-seg-p6", 5_302_816)])
def test_segmentation_yaml_imports_at_ultralytics_count(stem: str, count: int) -> None:
    imported = convert((DATA / f"{stem}.yaml").read_text(), name=f"{stem}.yaml")
    head = imported.spec.layers[-1]
    assert head.kind == "segment" and head.inputs == (("p3", "p4", "p5", "p6") if "p6" in stem else ("p3", "p4", "p5"))
    assert netspec.loads(imported.spec.to_yaml()) == imported.spec
    assert netspec.check(imported.spec).params == count
