"""Issue: core. The `netspec` command: output, exit codes (0 ok, 1 invalid spec, 2 usage), errors on stderr."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netspec.cli import main

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


def test_build_writes_a_checkpoint_or_a_state_dict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In this process (``main``): three interpreters importing torch took 13 s of a busy machine."""
    out, spec = tmp_path / "model.pt", str(ROOT / "specs" / "resnet18.yaml")
    assert main(["build", spec, "-o", str(out)]) == 0, capsys.readouterr().err
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint["format"] == "netspec-checkpoint" and "name: resnet18" in checkpoint["spec"]
    assert main(["build", str(out)]) == 0, capsys.readouterr().err  # what -o x.pt writes, `netspec build x.pt` reads
    assert main(["build", spec, "-o", str(out), "--state-dict"]) == 0, capsys.readouterr().err
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


def test_the_documented_error_example_is_what_netspec_prints() -> None:
    result = netspec("check", "tests/data/bad.yaml")
    assert result.returncode == 1
    page = (ROOT / "docs" / "concepts" / "errors.md").read_text()
    assert "$ netspec check tests/data/bad.yaml\n" + result.stderr in page
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


# --- issue 23: bad input that crashed, hung or said too little -------------------------------------------------


def test_version() -> None:
    import tomllib

    import netspec as package
    from netspec.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert package.__version__ == version


def test_version_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    from netspec import __version__
    from netspec.cli import main

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == f"netspec {__version__}\n"


@pytest.mark.parametrize("command", ["build", "check", "graph", "bench"])
def test_a_fifo_spec_is_refused_by_every_command_never_waited_on(command: str, tmp_path: Path) -> None:
    """`netspec build` of a named pipe hung (its checkpoint sniffing opened it blocking) where `check` refused it."""
    import os

    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    result = netspec(command, str(fifo), *(["--size", "8"] if command == "bench" else []))
    assert result.returncode == 1
    assert result.stderr == f"{fifo}: cannot read the spec: a pipe, not a regular file\n"
    plain = tmp_path / "net"  # no extension: sniffed for a zip checkpoint, as a regular file only
    os.mkfifo(plain)
    from netspec.weights import looks_like_checkpoint

    assert looks_like_checkpoint(plain) is False


def test_bench_counts_the_batch_against_the_budget_before_allocating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`--batch 65536 --size 1024` allocated an 824 GB example input and printed a traceback: the per-sample
    budget (--max-activations) is counted for the whole batch, and bench refuses before building anything."""
    import netspec as package
    from netspec.cli import main

    spec = tmp_path / "s.yaml"
    spec.write_text("input: {channels: 3}\nlayers:\n  - conv: {out: 8}\n")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("built before the budget was checked")

    monkeypatch.setattr(package, "build", never)
    assert main(["bench", str(spec), "--batch", "65536", "--size", "1024"]) == 1
    err = capsys.readouterr().err
    assert err == (f"netspec bench: {spec}: --batch 65,536 x 8,388,608 values per sample (layer 'conv1', "
                   "(N, 8, 1024, 1024)) is 549,755,813,888 values in one tensor, over the limit of 2,147,483,647 "
                   "(--max-activations counts the whole batch in bench): lower --batch or --size\n")
    assert main(["bench", str(spec), "--batch", "2", "--size", "8", "--max-activations", "1000"]) == 1
    assert "x 512 values per sample (layer 'conv1', (N, 8, 8, 8)) is 1,024 values" in capsys.readouterr().err


OUT_OF_MEMORY = [
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 10800000000 bytes. Error code 12 (Cannot allocate memory)"),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB\nmore lines"),
    MemoryError(),
]


@pytest.mark.parametrize("error", OUT_OF_MEMORY, ids=["cpu-allocator", "cuda", "python"])
@pytest.mark.parametrize("command", ["build", "bench"])
def test_running_out_of_memory_is_one_line_and_exit_1(error: BaseException, command: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """With the limits lifted (--max-params none --max-activations none) a network may not fit: that is a clear
    one-line error, never a traceback."""
    import netspec as package
    from netspec.cli import main

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(package, "build", fail)
    spec = tmp_path / "s.yaml"
    spec.write_text("input: {channels: 3, size: 8}\nlayers:\n  - conv: {out: 8}\n")
    extra = ["-o", str(tmp_path / "x.pt")] if command == "build" else ["--steps", "1"]
    assert main([command, str(spec), *extra, "--max-params", "none", "--max-activations", "none"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("netspec: out of memory: ") and len(err.splitlines()) == 1, err
    assert "enforce fail" not in err and "Traceback" not in err
    assert not (tmp_path / "x.pt").exists()


def test_a_network_too_large_for_memory_is_one_line_in_a_real_process(tmp_path: Path) -> None:
    """The real allocation failure, in a process whose address space is capped at 6 GiB (a 10.8 GB conv)."""
    import resource

    spec = tmp_path / "huge.yaml"
    spec.write_text("input: {channels: 3}\nlayers:\n  - conv: {out: 100000000}\n")

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    result = subprocess.run([sys.executable, "-m", "netspec", "build", str(spec), "-o", str(tmp_path / "x.pt"),
                             "--max-params", "none", "--max-activations", "none"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, preexec_fn=cap)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("netspec: out of memory: DefaultCPUAllocator: can't allocate memory"), result.stderr
    assert len(result.stderr.splitlines()) == 1
