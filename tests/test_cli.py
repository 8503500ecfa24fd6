"""Issue: core. The `netspec` command: output, exit codes (0 ok, 1 invalid spec, 2 usage), errors on stderr."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def netspec(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netspec", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_build_prints_one_row_per_layer_then_totals() -> None:
    result = netspec("build", "specs/se_resnet50.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines if line.split() and line.split()[0].rstrip("0123456789") in
            {"conv", "maxpool", "stage", "avgpool", "linear"}]
    assert [row[0] for row in rows] == [
        "conv1", "maxpool1", "stage1", "stage2", "stage3", "stage4", "avgpool1", "linear1",
    ]
    stage4 = next(row for row in rows if row[0] == "stage4")
    assert " ".join(stage4[2:6]) == "(N, 2048, 7, 7)"
    assert "total params: 28,088,024" in result.stdout
    assert "output:       (N, 1000)" in result.stdout


def test_build_json() -> None:
    result = netspec("build", "specs/resnet18.yaml", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["params"] == 11_689_512
    assert data["output"] == [1000]
    assert [layer["name"] for layer in data["layers"]][:2] == ["conv1", "maxpool1"]
    assert data["layers"][0]["output"] == [64, 112, 112]


def test_build_writes_a_checkpoint_or_a_state_dict(tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    result = netspec("build", "specs/resnet18.yaml", "-o", str(out))
    assert result.returncode == 0, result.stderr
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint["format"] == "netspec-checkpoint" and "name: resnet18" in checkpoint["spec"]
    assert netspec("build", str(out)).returncode == 0  # what -o x.pt writes, `netspec build x.pt` reads
    result = netspec("build", "specs/resnet18.yaml", "-o", str(out), "--state-dict")
    assert result.returncode == 0, result.stderr
    state = torch.load(out)
    assert sum(t.numel() for k, t in state.items() if "running" not in k and "num_batches" not in k) == 11_689_512


def test_check_many_specs() -> None:
    result = netspec("check", "specs/resnet18.yaml", "specs/resnet50.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "specs/resnet18.yaml: ok (8 layers, output (N, 1000), 11,689,512 params)",
        "specs/resnet50.yaml: ok (8 layers, output (N, 1000), 25,557,032 params)",
    ]


def test_invalid_spec_exits_1_with_located_errors_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {channels: 3, size: 16}\nlayers:\n  - conv: {out: 8}\n  - se: {reduction: 16}\n  - sk2\n")
    for command in ("build", "check"):
        result = netspec(command, str(bad))
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert result.stderr.splitlines() == [
            f"{bad}:4:21: layers[1].se.reduction: must be <= 8 (the input has 8 channels)",
            f"{bad}:5:5: layers[2].sk2: unknown kind 'sk2'" + result.stderr.splitlines()[1].split("'sk2'", 1)[1],
        ]
        assert result.stdout == ""


def test_check_reports_every_file_and_fails_if_any_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [3]\nlayers: [se]\n")
    result = netspec("check", "specs/resnet18.yaml", str(bad), str(tmp_path / "missing.yaml"))
    assert result.returncode == 1
    assert "specs/resnet18.yaml: ok" in result.stdout
    assert result.stderr.splitlines()[0].startswith(f"{bad}:1:8: input: ")
    assert f"{tmp_path / 'missing.yaml'}: cannot read the spec: No such file or directory" in result.stderr


@pytest.mark.parametrize("args", [(), ("build",), ("frobnicate", "x.yaml"), ("build", "a.yaml", "--nope")])
def test_wrong_usage_exits_2(args: tuple[str, ...]) -> None:
    result = netspec(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_blocks_lists_every_kind_with_params_and_paper() -> None:
    result = netspec("blocks")
    assert result.returncode == 0
    assert "se: Squeeze-and-Excitation" in result.stdout
    assert "reduction: default 16" in result.stdout
    assert "Hu, Shen, Sun. Squeeze-and-Excitation Networks" in result.stdout
    for kind in ("conv", "stage", "maxpool", "avgpool", "linear", "dropout", "flatten"):
        assert f"\n{kind}: " in "\n" + result.stdout


def test_readme_error_example_is_what_netspec_prints() -> None:
    result = netspec("check", "tests/data/bad.yaml")
    assert result.returncode == 1
    readme = (ROOT / "README.md").read_text()
    assert "$ netspec check tests/data/bad.yaml\n" + result.stderr in readme
    assert len(result.stderr.splitlines()) == 5


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    import fcntl
    import os

    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, 1031, 4096)  # F_SETPIPE_SZ: smaller than what `blocks` prints, so the write must wait
    process = subprocess.Popen(
        [sys.executable, "-m", "netspec", "blocks"], cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE
    )
    os.close(write_end)
    assert os.read(read_end, 10)
    os.close(read_end)  # like `netspec blocks | head -1`
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0
    assert stderr == ""
