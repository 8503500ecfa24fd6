"""``netspec bench``: images/s, ms per step and peak memory of a built network, as timm's ``benchmark.py`` measures.

Inference steps are ``model(x)`` under ``torch.no_grad()`` in eval mode; training steps are ``zero_grad``, forward,
loss (cross-entropy against random targets for an (N, classes) output, else the mean of the outputs), backward
and an SGD step, in train mode. ``--amp`` runs the forward and loss under ``torch.autocast`` (float16 training
with a ``GradScaler``), ``--channels-last`` converts model and input, ``--compile`` wraps the model in
``torch.compile``. Warm-up steps come first and are not timed; each timed step is timed on its own (CUDA
synchronised before and after), so the median and the spread are per step; images/s is batch * steps / the
timed steps' total, as timm reports it.

Peak memory is measured per mode, above the *resting* model (weights, input and optimizer state in memory,
gradients freed), so it is what the steps themselves add: activations, what autograd keeps, gradients.

- CUDA: ``torch.cuda.max_memory_allocated()`` over the timed steps, after ``reset_peak_memory_stats()``, minus
  ``memory_allocated()`` at rest (method ``cuda``).
- CPU: the process's peak resident set over one extra step after all timing. glibc is first told to serve every
  allocation of 64 KiB or more from ``mmap`` and to return freed memory at once (``mallopt``, the same fixed
  thresholds as ``benchmarks/memprobe.py``), so RSS follows live memory instead of a heap that earlier steps
  left behind; then ``malloc_trim``, the resting RSS is read and the peak RSS (``VmHWM``) is reset through
  ``/proc/self/clear_refs`` (method ``vmhwm``). Where ``clear_refs`` cannot be written, a thread samples
  ``/proc/self/statm`` every 0.5 ms during the step instead (method ``sampled``, can miss short peaks); without
  ``/proc`` it is not measured. The extra step runs outside the timed ones, because ``mmap`` per tensor slows
  allocation down.
"""
from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

MODES = ("infer", "train")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

_MMAP_THRESHOLD_BYTES = 64 << 10
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_SAMPLE_INTERVAL_S = 0.5e-3


class BenchError(Exception):
    """Why a benchmark cannot run (unavailable device or dtype, a failing step): one line for the user."""


@dataclass(frozen=True)
class Settings:
    """What to measure: ``modes`` among :data:`MODES`, batch, (H, W), and how the model runs."""

    modes: tuple[str, ...]
    batch: int
    size: tuple[int, int]
    device: str = "cpu"
    amp: str | None = None
    channels_last: bool = False
    compile: bool = False
    steps: int = 20
    warmup: int = 5
    progress: bool = True


@dataclass(frozen=True)
class StepTimes:
    """Milliseconds per timed step: median and spread (quartiles, min, max)."""

    median: float
    p25: float
    p75: float
    min: float
    max: float

    @classmethod
    def of(cls, seconds: list[float]) -> "StepTimes":
        values = sorted(s * 1e3 for s in seconds)
        return cls(quantile(values, 0.5), quantile(values, 0.25), quantile(values, 0.75), values[0], values[-1])


@dataclass(frozen=True)
class ModeResult:
    mode: str
    images_per_s: float
    step_ms: StepTimes
    peak_memory_bytes: int | None
    memory_method: str


@dataclass(frozen=True)
class Report:
    """Everything ``netspec bench`` prints; :meth:`to_dict` is its ``--json``."""

    spec: str
    name: str | None
    params: int
    input: tuple[int, int, int, int]
    device: str
    threads: int
    precision: str
    channels_last: bool
    compile: bool
    steps: int
    warmup: int
    torch: str
    results: list[ModeResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.device} ({self.threads} threads)" if self.device == "cpu" else self.device
        options = [self.precision] + ["channels_last"] * self.channels_last + ["compiled"] * self.compile
        lines = [
            f"{self.spec}: {self.name or 'unnamed'}, {self.params:,} params, input {tuple(self.input)}, {where}, "
            f"{', '.join(options)}; {self.steps} timed steps after {self.warmup} warm-up",
        ]
        header = ("mode", "images/s", "ms/step", "p25-p75 ms", "min-max ms", "peak memory")
        rows = [header] + [
            (
                r.mode,
                f"{r.images_per_s:,.1f}",
                f"{r.step_ms.median:.1f}",
                f"{r.step_ms.p25:.1f}-{r.step_ms.p75:.1f}",
                f"{r.step_ms.min:.1f}-{r.step_ms.max:.1f}",
                "-" if r.peak_memory_bytes is None else f"{r.peak_memory_bytes / 2**20:,.1f} MiB",
            )
            for r in self.results
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                                   enumerate(zip(row, widths))).rstrip())
        methods = sorted({r.memory_method for r in self.results})
        lines.append(f"peak memory: above the resting model; method {', '.join(methods)} (see `netspec bench --help`)")
        return "\n".join(lines)


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation quantile of an ascending list (numpy's default)."""
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def resolve_device(name: str, amp: str | None) -> torch.device:
    """The torch device for ``name``, after checking that it and the ``amp`` dtype are usable here."""
    if name == "cuda":
        if not torch.cuda.is_available():
            built = "this torch has no CUDA support" if torch.version.cuda is None else "no CUDA device is visible"
            raise BenchError(f"--device cuda: CUDA is not available ({built}; torch {torch.__version__})")
        if amp == "bf16" and not torch.cuda.is_bf16_supported():
            raise BenchError(f"--amp bf16: {torch.cuda.get_device_name()} does not support bfloat16")
    elif name != "cpu":
        raise BenchError(f"--device {name}: unknown device (use cpu or cuda)")
    if amp is not None and hasattr(torch.amp, "is_autocast_available") and not torch.amp.is_autocast_available(name):
        raise BenchError(f"--amp {amp}: autocast is not available on {name} in torch {torch.__version__}")
    return torch.device(name)


def loss_classes(output: tuple[int, ...]) -> int | None:
    """The class count of a classifier's ``(classes,)`` output (a cross-entropy loss against random targets in
    training), or None for any other output shape (the training loss is then the outputs' mean)."""
    return output[0] if len(output) == 1 and output[0] > 1 else None


def _tensors(output: Any) -> list[torch.Tensor]:
    """Every tensor of a model's output: a tensor, a tuple/list of outputs, or a detection head's training dict."""
    if isinstance(output, torch.Tensor):
        return [output]
    items = output.values() if isinstance(output, dict) else output
    return [tensor for item in items for tensor in _tensors(item)]


def _loss(output: Any, targets: torch.Tensor | None) -> torch.Tensor:
    outputs = _tensors(output)
    if targets is not None:
        return nn.functional.cross_entropy(outputs[0].float(), targets)
    return sum(o.float().mean() for o in outputs)  # type: ignore[return-value]


def make_step(
    model: nn.Module, example: torch.Tensor, mode: str, settings: Settings, classes: int | None
) -> Callable[[], None]:
    device = example.device
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = (
        (lambda: torch.autocast(device.type, dtype=AMP_DTYPES[settings.amp]))  # type: ignore[index]
        if settings.amp else contextlib.nullcontext
    )
    if mode == "infer":
        model.eval()

        def infer() -> None:
            with torch.no_grad(), autocast():
                model(example)

        return infer
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type) if settings.amp == "fp16" else None
    targets = None if classes is None else torch.randint(classes, (settings.batch,), device=device)

    def train() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = _loss(model(example), targets)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        optimizer.zero_grad(set_to_none=True)  # at rest the gradients are freed: peaks count them

    return train


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _progress(total: int, description: str, enabled: bool) -> Any:
    """A tqdm bar on stderr (shown on a terminal only), or None when tqdm is not installed or ``enabled`` is off."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit="step", file=sys.stderr, leave=False, disable=None)


def _timed(step: Callable[[], None], device: torch.device, settings: Settings, mode: str) -> list[float]:
    for _ in range(settings.warmup):
        step()
    _synchronize(device)
    bar = _progress(settings.steps, mode, settings.progress)
    seconds = []
    try:
        for _ in range(settings.steps):
            start = time.perf_counter()
            step()
            _synchronize(device)
            seconds.append(time.perf_counter() - start)
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    return seconds


# ---- CPU peak memory: resident set above the resting model -------------------------------------------------------

def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field_name}")


def _statm_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _glibc() -> Any:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@contextlib.contextmanager
def _rss_follows_live_memory() -> Iterator[None]:
    """glibc: big blocks from mmap and freed memory returned at once, so RSS tracks live tensors."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        libc.malloc_trim(0)
    yield


def _can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        _status_kib("VmHWM")
    except OSError:
        return False
    return True


def cpu_peak(step: Callable[[], None]) -> tuple[int | None, str]:
    """Peak RSS of one ``step()`` above the RSS before it, in bytes, and the method (see the module docstring)."""
    if not os.path.exists("/proc/self/statm"):
        step()
        return None, "not measured (no /proc)"
    with _rss_follows_live_memory():
        gc.collect()
        libc = _glibc()
        if libc is not None:
            libc.malloc_trim(0)
        if _can_reset_peak():
            before = _status_kib("VmRSS")
            step()
            return max(0, _status_kib("VmHWM") - before) * 1024, "vmhwm"
        before_bytes = _statm_bytes()
        peak = [before_bytes]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _statm_bytes())
                time.sleep(_SAMPLE_INTERVAL_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            step()
        finally:
            done.set()
            sampler.join()
        return max(0, max(peak[0], _statm_bytes()) - before_bytes), "sampled"


# ---- the run ------------------------------------------------------------------------------------------------------

def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0]


def run(model: nn.Module, settings: Settings, *, channels: int, classes: int | None) -> list[ModeResult]:
    """Time ``settings.modes`` on ``model`` (already on its device) and measure their peak memory.

    ``channels``: the input's; ``classes``: the size of an (N, classes) output (a cross-entropy loss against
    random targets in training), or None for other outputs (the loss is their mean).
    """
    device = torch.device(settings.device)
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    example = torch.randn(settings.batch, channels, *settings.size, device=device).contiguous(
        memory_format=memory_format)
    runnable: nn.Module = torch.compile(model) if settings.compile else model
    results: dict[str, tuple[list[float], int | None, str]] = {}
    steps: dict[str, Callable[[], None]] = {}
    for mode in settings.modes:
        what = f"{mode} step" + (f" under --amp {settings.amp}" if settings.amp else "") + (
            " with --compile" if settings.compile else "") + f" on {device.type}"
        try:
            steps[mode] = make_step(runnable, example, mode, settings, classes)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
                resting = torch.cuda.memory_allocated(device)
            seconds = _timed(steps[mode], device, settings, mode)
            if device.type == "cuda":
                peak: int | None = torch.cuda.max_memory_allocated(device) - resting
                results[mode] = (seconds, peak, "cuda")
            else:
                results[mode] = (seconds, None, "")
        except torch.OutOfMemoryError:
            raise BenchError(f"{what}: out of memory at batch {settings.batch}; try a smaller --batch") from None
        except (RuntimeError, NotImplementedError, TypeError) as error:
            raise BenchError(f"{what} failed: {type(error).__name__}: {_first_line(error)}") from None
        except Exception as error:  # torch.compile's backend errors have their own classes
            if "torch._dynamo" in type(error).__module__ or "torch._inductor" in type(error).__module__:
                raise BenchError(f"{what} failed: {type(error).__name__}: {_first_line(error)}") from None
            raise
    if device.type == "cpu":  # after all timing: the allocator settings for it slow allocation down
        for mode in settings.modes:
            seconds, _, _ = results[mode]
            results[mode] = (seconds, *cpu_peak(steps[mode]))
    return [
        ModeResult(mode, settings.batch * len(seconds) / sum(seconds), StepTimes.of(seconds), peak, method)
        for mode, (seconds, peak, method) in results.items()
    ]

