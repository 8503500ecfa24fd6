"""Targets ``attention`` (every attention kind, forward and forward+backward, against the official-style
baselines) and ``kernels`` (which SDPA kernel runs; the largest intermediate tensor)."""
from __future__ import annotations

import json
import math
import shlex
import statistics
import subprocess
import sys

from .core import NOISE, ROOT, RUN, Section, forward_fn, interleaved, median, ms, paired, training_fn

ATTENTION_KINDS = ("se", "eca", "cbam", "sk", "nonlocal", "pam", "cam", "danet")
SPATIAL_KINDS = ("nonlocal", "pam", "cam", "danet")
FAST_CASE_S = 2e-3
FAST_CASE_PROCESSES = 5
"""Attention cases run each in a fresh process, so that no case (nor the 64x64 memory target before them)
leaves the heap in a state that favours or handicaps the next; cases whose baseline forward takes under
FAST_CASE_S run in FAST_CASE_PROCESSES processes, their repeats pooled."""


# ---------------------------------------------------------------------------------------------
# Modules: netspec's and the baseline's, same weights


def netspec_module(kind: str, channels: int, size: int):
    import netspec
    from netspec.layers.base import Context
    from netspec.shapes import Shape

    return netspec.KINDS[kind]().build(Shape(channels, size, size), Context())


def module_pair(kind: str, channels: int, size: int, device: str, dtype):
    """netspec's module and the baseline, same random weights (so the same outputs), on ``device``."""
    import torch

    from baselines import ATTENTION_BASELINES, copy_weights

    torch.manual_seed(0)
    candidate = netspec_module(kind, channels, size)
    with torch.no_grad():  # not the zero init of gamma / the last BN: a non-trivial function
        for tensor in candidate.parameters():
            if tensor.ndim == 1:  # gammas, norms' affine, biases; conv weights keep PyTorch's default init
                tensor.copy_(torch.randn_like(tensor) * 0.1 + 1.0)
    # (Conv weights of std 0.1 on 512 channels gave attention energies of std ~49: 6% of the softmax's
    # probabilities were subnormal floats, and a bmm over them ran ~50x slower on Intel CPUs (microcode assists
    # per subnormal operand), for netspec and the baseline alike; AMD's cores take them at nearly full speed.)
    baseline = ATTENTION_BASELINES[kind](channels)
    copy_weights(kind, candidate, baseline)
    return candidate.to(device=device, dtype=dtype), baseline.to(device=device, dtype=dtype)



# ---------------------------------------------------------------------------------------------
# 2. Time of every attention kind at typical shapes


def measure_case(case: str, repeats: int, target_s: float, device: str, dtype_name: str) -> dict:
    """Forward and forward+backward samples of one attention case ``kind:channels:size:layout``, batch 8."""
    import torch

    kind, channels, size, memory_format = case.split(":")
    channels, size = int(channels), int(size)
    candidate, baseline = module_pair(kind, channels, size, device, getattr(torch, dtype_name))
    x = torch.randn(8, channels, size, size, device=device, dtype=getattr(torch, dtype_name))
    layout = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    x = x.contiguous(memory_format=layout)
    candidate.eval(), baseline.eval()
    with torch.no_grad():
        keeps = candidate(x).is_contiguous(memory_format=layout)
        base_keeps = baseline(x).is_contiguous(memory_format=layout)
    fwd = interleaved({"netspec": forward_fn(candidate, x), "baseline": forward_fn(baseline, x)},
                      repeats=repeats, target_s=target_s, device=device)
    candidate.train(), baseline.train()
    xg = x.detach().clone().requires_grad_(True)
    bwd = interleaved({"netspec": training_fn(candidate, xg), "baseline": training_fn(baseline, xg)},
                      repeats=repeats, target_s=target_s, device=device)
    return {"forward": fwd, "forward+backward": bwd, "keeps": keeps, "base_keeps": base_keeps}


def case_in_fresh_process(case: str, repeats: int, target_s: float, args) -> tuple[dict, dict, bool, bool]:
    """:func:`measure_case` in a new process (same malloc settings, threads, device and dtype)."""
    command = [sys.executable, str(RUN), "--case", case, "--case-repeats", str(repeats), "--case-target-s",
               str(target_s), "--device", args.device, "--dtype", args.dtype, "--threads", str(args.threads)]
    if args.system_malloc:
        command.append("--system-malloc")
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"attention case failed: {shlex.join(command)}\n{result.stderr[-2000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return measured["forward"], measured["forward+backward"], measured["keeps"], measured["base_keeps"]


def bench_attention(args) -> Section:
    section = Section("attention", "2. Attention kinds: forward and forward+backward time, batch 8")
    section.add(f"## {section.title}")
    section.add()
    shapes = [(256, 28), (512, 14), (1024, 14)]
    formats = ["nchw", "channels_last"]
    if args.quick:
        shapes, formats = [(256, 28)], ["nchw", "channels_last"]
    repeats = 5 if args.quick else 11
    target_s = 0.03 if args.quick else 0.08
    rows = []
    ratios: dict[str, list[float]] = {"forward": [], "forward+backward": []}
    worst: dict[str, tuple[float, str]] = {}
    for kind in [k for k in args.kinds.split(",") if k]:
        for channels, size in shapes:
            for memory_format in formats:
                case = f"{kind}:{channels}:{size}:{memory_format}"
                fwd, bwd, keeps, base_keeps = case_in_fresh_process(case, repeats, target_s, args)
                if median(fwd["baseline"]) < FAST_CASE_S:
                    # sub-millisecond forwards (the gates) swing by 10-20% with the state of the heap their
                    # tensors come from: measure them in more fresh processes and pool the repeats
                    for _ in range(FAST_CASE_PROCESSES - 1):
                        more = case_in_fresh_process(case, max(3, repeats // 2), target_s, args)
                        for pooled, extra in ((fwd, more[0]), (bwd, more[1])):
                            for name in pooled:
                                pooled[name] = pooled[name] + extra[name]
                row = [kind, f"{channels}@{size}x{size}", memory_format]
                for mode, samples in (("forward", fwd), ("forward+backward", bwd)):
                    a, b = median(samples["netspec"]), median(samples["baseline"])
                    ratio = paired(samples["netspec"], samples["baseline"])
                    ratios[mode].append(ratio)
                    key = f"{kind} {mode}"
                    if key not in worst or ratio > worst[key][0]:
                        worst[key] = (ratio, f"{channels}@{size}x{size} {memory_format}")
                    row += [ms(a), ms(b), f"{ratio:.2f}"]
                row += ["yes" if keeps else "no", "yes" if base_keeps else "no"]
                rows.append(row)
                print(" | ".join(row), file=sys.stderr, flush=True)
    section.add("Median ms per call of interleaved repeats (netspec / baseline); ratio: netspec / baseline, the "
                "median of the per-repeat ratios; each case in a fresh process (forwards under "
                f"{FAST_CASE_S * 1e3:.0f} ms: in {FAST_CASE_PROCESSES}, repeats pooled); "
                "forward under `torch.no_grad()` in eval mode, forward+backward in train mode with the input "
                "requiring grad. `layout kept`: the output is in the input's memory format (netspec / baseline).")
    section.add()
    section.table(["kind", "shape", "layout", "fwd ms", "base ms", "fwd ratio", "f+b ms", "base ms", "f+b ratio",
                   "layout kept", "base kept"], rows)
    for mode, values in ratios.items():
        section.add(f"- {mode}: geometric mean ratio {math.exp(statistics.fmean(map(math.log, values))):.3f}, "
                    f"max {max(values):.3f}, cases <= 1.00: {sum(v <= 1.0 for v in values)}/{len(values)}, "
                    f"<= {1 + NOISE:.2f}: {sum(v <= 1 + NOISE for v in values)}/{len(values)}")
    section.add()
    for key, (ratio, where) in sorted(worst.items()):
        section.verdict(f"{key} time no worse than baseline (worst case: {where})", ratio <= 1 + NOISE,
                        f"{ratio:.2f}")
    return section


# ---------------------------------------------------------------------------------------------
# Kernels: which SDPA kernel runs, and is the score matrix ever whole?


def bench_kernels(args) -> Section:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    section = Section("kernels", "Fused attention kernels and the largest intermediate tensor")
    section.add(f"## {section.title}")
    section.add()
    dtype = getattr(torch, args.dtype)

    class Recorder(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: set[str] = set()
            self.largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = str(func.overloadpacket.__name__)
            self.ops.add(name)
            for tensor in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(tensor, torch.Tensor):
                    self.largest = max(self.largest, tensor.numel())
            return out

    shapes = [(512, 64, 2), (256, 28, 8), (512, 14, 8), (1024, 14, 8)]
    if args.quick:
        shapes = shapes[:2]
    rows = []
    restricted_ok = True
    for kind in SPATIAL_KINDS:
        for channels, size, batch in shapes:
            candidate, _ = module_pair(kind, channels, size, args.device, dtype)
            x = torch.randn(batch, channels, size, size, device=args.device, dtype=dtype)
            candidate.train()
            recorder = Recorder()
            with recorder:
                candidate(x).sum().backward()
            fused = sorted(op for op in recorder.ops if "scaled_dot_product" in op)
            tokens = size * size
            whole = batch * (channels * channels if kind == "cam" else tokens * tokens)
            # fused-only: SDPA restricted to the fused backends raises instead of falling back to math
            from torch.nn.attention import SDPBackend, sdpa_kernel

            backends = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
            if args.device.startswith("cuda"):
                backends.append(SDPBackend.CUDNN_ATTENTION)
            try:
                with sdpa_kernel(backends):
                    candidate(x).sum().backward()
                fused_only = "ok"
            except RuntimeError as error:
                fused_only = "FALLS BACK: " + str(error).splitlines()[0][:60]
                restricted_ok = False
            rows.append([kind, f"{batch}x{channels}@{size}x{size}", ", ".join(fused) or "none: bmm + softmax",
                         f"{recorder.largest / whole:.3f}", fused_only])
    section.add("Forward+backward (train mode) of netspec's module under a dispatch recorder: the SDPA kernels "
                "that ran, and the largest tensor any op produced divided by the size of the whole score matrix "
                "(HW x HW per sample; C x C for CAM). Below 1: the matrix was never whole (fused kernel, or query "
                "chunks where no fused kernel fits: PAM on the CPU). Above 1: the largest tensors are the feature "
                "maps, so materialising the smaller score matrix costs less than the inputs already take; there "
                "netspec runs bmm + softmax on the CPU (faster than the flash kernel), and CAM does in training "
                "(its C x C probabilities are small to keep for backward). "
                "`fused only`: the same pass with `torch.nn.attention.sdpa_kernel` restricted to the fused "
                "backends (flash, memory-efficient" + (", cuDNN" if args.device.startswith("cuda") else "") +
                "), which raises if SDPA would fall back to the math kernel.")
    section.add()
    section.table(["kind", "input", "SDPA kernels", "largest / whole matrix", "fused only"], rows)
    section.verdict("SDPA never falls back to the math kernel" + ("" if args.device.startswith("cuda") else
                    " (CPU; the GPU check needs --device cuda)"), restricted_ok, "-")
    return section


