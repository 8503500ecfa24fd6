"""Issue 14: `netspec bench` runs, reports every field, --json parses, errors are one line. Never a timing."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netspec.bench import StepTimes, _progress, cpu_peak, loss_classes, quantile

ROOT = Path(__file__).resolve().parent.parent

TINY = """\
name: tiny
input: {channels: 3, size: 16}
layers:
  - conv: {out: 8, kernel: 3, stride: 2}
  - se: {reduction: 2}
  - avgpool
  - linear: {out: 5}
"""


def netspec(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_json_has_every_field_for_both_modes(tiny: Path) -> None:
    result = netspec("bench", str(tiny), "--steps", "2", "--warmup", "1", "--batch", "2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["input"] == [2, 3, 16, 16]
    assert report["params"] == netspec_params(tiny)
    assert (report["device"], report["precision"], report["steps"], report["warmup"]) == ("cpu", "float32", 2, 1)
    assert [r["mode"] for r in report["results"]] == ["infer", "train"]
    for mode in report["results"]:
        assert mode["images_per_s"] > 0
        assert set(mode["step_ms"]) == {"median", "p25", "p75", "min", "max"}
        times = mode["step_ms"]
        assert times["min"] <= times["p25"] <= times["median"] <= times["p75"] <= times["max"]
        assert mode["memory_method"] in {"vmhwm", "sampled", "not measured (no /proc)"}
        assert mode["peak_memory_bytes"] is None or mode["peak_memory_bytes"] >= 0


def netspec_params(path: Path) -> int:
    import netspec

    return netspec.check(path).params


def test_table_with_size_channels_last_and_bf16(tiny: Path) -> None:
    result = netspec("bench", str(tiny), "--steps", "2", "--warmup", "1", "--batch", "1", "--mode", "train",
                     "--size", "24,20", "--channels-last", "--amp", "bf16")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "input (1, 3, 24, 20)" in lines[0] and "bf16 autocast, channels_last" in lines[0]
    assert lines[1].split() == ["mode", "images/s", "ms/step", "p25-p75", "ms", "min-max", "ms", "peak", "memory"]
    assert lines[2].split()[0] == "train" and lines[2].endswith("MiB")
    assert lines[3].startswith("peak memory: above the resting model")


def test_a_non_classifier_output_trains_on_its_mean(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("input: {channels: 3}\nlayers:\n  - conv: {out: 16, kernel: 3}\n  - pam\n")
    result = netspec("bench", str(path), "--size", "8", "--steps", "1", "--warmup", "0", "--mode", "train", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["mode"] == "train"


def test_only_a_classifier_output_gets_cross_entropy() -> None:
    assert loss_classes((1000,)) == 1000
    assert loss_classes((1,)) is None  # one logit: no classes to draw targets from
    assert loss_classes((21, 64, 64)) is None  # a segmentation map (or the first of several outputs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_is_one_line(tiny: Path) -> None:
    result = netspec("bench", str(tiny), "--device", "cuda")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("netspec bench: --device cuda: CUDA is not available")


def test_spec_without_size_needs_size(tmp_path: Path) -> None:
    path = tmp_path / "nosize.yaml"
    path.write_text("input: {channels: 3}\nlayers:\n  - conv: {out: 4}\n")
    result = netspec("bench", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"netspec bench: {path} sets no input.size: give --size H or --size H,W"


def test_bad_spec_and_too_small_size_are_located(tmp_path: Path) -> None:
    result = netspec("bench", "tests/data/bad.yaml")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) > 1 and all(line.startswith("tests/data/bad.yaml:") for line in lines)
    path = tmp_path / "valid.yaml"
    path.write_text("input: {channels: 3, size: 16}\nlayers:\n  - conv: {out: 4, kernel: 5, padding: 0}\n")
    small = netspec("bench", str(path), "--size", "3")  # valid at 16x16, not at the --size given
    assert small.returncode == 1
    assert small.stderr.startswith(f"{path}:3:40: layers[0].conv.padding: the 3x3 map would shrink")  # what was written
    assert len(small.stderr.splitlines()) == 1


@pytest.mark.parametrize("option", [["--steps", "0"], ["--batch", "-1"], ["--size", "3,4,5"], ["--amp", "fp8"],
                                    ["--warmup", "x"]])
def test_usage_errors_exit_2(tiny: Path, option: list[str]) -> None:
    result = netspec("bench", str(tiny), *option)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("netspec bench: error: argument")


def test_cpu_peak_sees_an_allocation_the_step_frees() -> None:
    def step() -> None:
        block = torch.ones(16 << 20, dtype=torch.float32)  # 64 MiB, touched, freed before the peak is read
        del block

    peak, method = cpu_peak(step)
    if method in {"vmhwm", "sampled"}:
        assert peak is not None and peak >= 60 << 20


def test_step_times_and_quantiles() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    times = StepTimes.of([0.004, 0.001, 0.002])
    assert (times.min, times.median, times.max) == (1.0, 2.0, 4.0)


def test_progress_falls_back_to_no_bar_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now raises ImportError
    assert _progress(3, "infer", True) is None
    assert _progress(3, "infer", False) is None
