"""The shared core of the benchmarks: report sections, interleaved timing with paired ratios, the timing
process's malloc settings and the machine description."""
from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent.parent  # benchmarks/
ROOT = HERE.parent
RUN = HERE / "run.py"
"""The entry point; fresh worker processes are started through it."""
if str(HERE) not in sys.path:  # baselines.py, memprobe.py, weights_bench.py: top-level modules, as tests import them
    sys.path.insert(0, str(HERE))

NOISE = 0.05
"""Timing ratios within 5% of 1 count as "no worse": the spread of repeated measurements on a shared machine."""


# ---------------------------------------------------------------------------------------------
# Reporting


@dataclass
class Section:
    target: str
    title: str
    lines: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, bool, str]] = field(default_factory=list)  # (what, met, ratio text)

    def add(self, line: str = "") -> None:
        self.lines.append(line)
        print(line, flush=True)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.add("| " + " | ".join(header) + " |")
        self.add("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            self.add("| " + " | ".join(row) + " |")
        self.add()

    def verdict(self, what: str, met: bool, ratio: str) -> None:
        self.verdicts.append((what, met, ratio))


def mib(count: float) -> str:
    return f"{count / 2**20:.1f}"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}" if seconds < 1 else f"{seconds * 1e3:.0f}"


def yes(flag: bool) -> str:
    return "met" if flag else "**MISSED**"


# ---------------------------------------------------------------------------------------------
# Timing: interleaved repeats, medians


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def interleaved(fns: dict[str, Callable[[], object]], *, repeats: int, target_s: float, device: str = "cpu",
                warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each function: ``repeats`` samples each, the functions alternating within every repeat
    (the order rotating) so that load changes on the machine hit all of them alike. A sample times enough calls
    to last about ``target_s``."""
    for fn in fns.values():  # at least `warmup` calls and 0.2 s each: the first calls of a kind are slower
        start = time.perf_counter()
        calls = 0
        while calls < warmup or (warmup and time.perf_counter() - start < 0.2):
            fn()
            calls += 1
    synchronize(device)
    single = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        fn()
        synchronize(device)
        single[name] = time.perf_counter() - start
    calls = max(1, math.ceil(target_s / max(max(single.values()), 1e-6)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for repeat in range(repeats):
        order = names[repeat % len(names):] + names[: repeat % len(names)]
        for name in order:
            fn = fns[name]
            synchronize(device)
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            synchronize(device)
            samples[name].append((time.perf_counter() - start) / calls)
    return samples


def cuda_step_peak(step: Callable[[], object]) -> int:
    """CUDA memory one call of ``step`` allocates above what is allocated before it (``max_memory_allocated``),
    after one untimed call that creates the optimizer state and the allocator's caches."""
    import torch

    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    resting = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - resting


def median(values: list[float]) -> float:
    return statistics.median(values)


def paired(ours: list[float], theirs: list[float]) -> float:
    """The median of the per-repeat ratios: each repeat times both back to back, so a burst of load from other
    jobs (which shifts both alike) cancels out, where a ratio of two medians can mix calm and busy moments."""
    return statistics.median(a / b for a, b in zip(ours, theirs))


def spread(values: list[float]) -> float:
    """Half the interquartile range relative to the median: the noise of one median."""
    if len(values) < 4:
        return 0.0
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / 2 / statistics.median(values)



def forward_fn(module, x):
    import torch

    def run():
        with torch.no_grad():
            return module(x)

    return run


def training_fn(module, x):
    params = [p for p in module.parameters() if p.requires_grad]
    state = {}

    def run():
        out = module(x)
        if "grad" not in state or state["grad"].shape != out.shape:
            state["grad"] = out.detach().clone().normal_()
        out.backward(state["grad"])
        x.grad = None
        for p in params:
            p.grad = None

    return run


# ---------------------------------------------------------------------------------------------
# The timing process's malloc settings


FIXED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(4 << 30), "MALLOC_TRIM_THRESHOLD_": str(4 << 30)}
"""glibc settings for the timing process: freed tensor memory stays in the heap and is reused, as in the steady
state of a training loop, instead of each large tensor being a fresh mmap whose first touch page-faults (which
made forward+backward timings bimodal, 2-3x apart, depending on allocation history)."""


def plain_env() -> dict[str, str]:
    """The environment without the timing process's malloc settings (for commands users run as they are)."""
    return {key: value for key, value in os.environ.items() if key not in FIXED_MALLOC}


# ---------------------------------------------------------------------------------------------
# The machine


def machine(args) -> list[str]:
    import torch

    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    lines = [
        f"- CPU: {model}, {os.cpu_count()} logical cores; torch intra-op threads: {torch.get_num_threads()}",
        f"- torch {torch.__version__}, Python {platform.python_version()}, {platform.platform()}",
    ]
    installed = []
    for package in ("torchvision", "timm", "ultralytics"):  # the packages target's (metadata only: no import)
        try:
            installed.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            installed.append(f"{package} not installed")
    lines.append("- " + ", ".join(installed))
    if args.device.startswith("cuda"):
        lines.append(f"- GPU: {torch.cuda.get_device_name()} (device {args.device}), dtype {args.dtype}")
    else:
        lines.append(f"- device: CPU, dtype {args.dtype}")
    fixed = all(os.environ.get(key) == value for key, value in FIXED_MALLOC.items())
    lines.append("- timing process: glibc malloc with fixed thresholds (" + ", ".join(f"{k}={v}" for k, v in
                 FIXED_MALLOC.items()) + "; see FIXED_MALLOC in benchmarks/suite/core.py)" if fixed else
                 "- timing process: glibc malloc with its default dynamic thresholds (--system-malloc)")
    try:
        load = os.getloadavg()
        lines.append(f"- load average at start: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)")
    except OSError:
        pass
    return lines

