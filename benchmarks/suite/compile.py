"""Target ``compile``: tests/test_compile.py's times, and the ``torch.compile`` speed-up per network."""
from __future__ import annotations

import gc
import re
import shlex
import subprocess
import sys
import time

from .core import ROOT, Section, interleaved, median, ms, paired, plain_env, synchronize
from .networks import NETWORK_AMP, NETWORK_BATCH, NetworkCase, network_names

def compile_speedups(args, section: Section) -> None:
    """``torch.compile`` (inductor, default mode) per network: eager / compiled time of netspec's model, and the
    compiled netspec model against the compiled twin."""
    import torch

    amp = NETWORK_AMP[args.dtype]
    rows = []
    for name in network_names(args):
        case = NetworkCase.of(name)
        models = case.models(args.device, args.channels_last)
        compiled = {impl: torch.compile(model) for impl, model in models.items()}
        x = case.example(args.device, args.channels_last)
        cells = [name]
        for mode in ("train", "infer"):
            fns = {"eager": case.step(models["netspec"], x, mode, amp),
                   "compiled": case.step(compiled["netspec"], x, mode, amp),
                   "twin compiled": case.step(compiled["twin"], x, mode, amp)}
            compile_s = {}
            for impl in ("compiled", "twin compiled"):  # the first call compiles
                start = time.perf_counter()
                fns[impl]()
                synchronize(args.device)
                compile_s[impl] = time.perf_counter() - start
            samples = interleaved(fns, repeats=3 if args.quick else 5, target_s=0.3, warmup=2, device=args.device)
            speedup = paired(samples["eager"], samples["compiled"])
            versus_twin = paired(samples["compiled"], samples["twin compiled"])
            cells += [f"{compile_s['compiled']:.0f} s", ms(median(samples["eager"])), ms(median(samples["compiled"])),
                      f"{speedup:.2f}x", f"{versus_twin:.3f}"]
            print(f"compile {name} {mode}: speed-up {speedup:.2f}x, compiled vs compiled twin {versus_twin:.3f}",
                  flush=True)
        rows.append(cells)
        del models, compiled
        torch._dynamo.reset()  # each network compiles from a clean cache; its memory is given back
        gc.collect()
    section.add()
    section.add("### torch.compile speed-up per network (issue 14)")
    section.add()
    section.add(f"`torch.compile(model)` (inductor, default mode) on {args.device}, batch {NETWORK_BATCH}, "
                f"{'autocast ' + args.dtype if amp else 'float32'}, "
                f"{'channels_last' if args.channels_last else 'NCHW'}, the "
                "networks' sizes and steps of the table above. `compile`: the first call (tracing and code "
                "generation; inductor's on-disk cache shortens it for graphs compiled in an earlier run on the "
                "machine); "
                "`speed-up`: eager / compiled time of netspec's model (median of per-repeat ratios of "
                "interleaved repeats); `vs twin`: compiled netspec / compiled twin (information: the compiled "
                "graphs of equal functions).")
    section.add()
    section.table(["network", "train compile", "eager ms", "compiled ms", "train speed-up", "vs twin",
                   "infer compile", "eager ms", "compiled ms", "infer speed-up", "vs twin"], rows)


def bench_compile(args) -> Section:
    section = Section("compile", "3. torch.compile(fullgraph=True)")
    section.add(f"## {section.title}")
    section.add()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0",
               "tests/test_compile.py"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=plain_env())
    elapsed = time.perf_counter() - start
    durations = [match.groups() for match in (re.match(r"^\s*([\d.]+)s call\s+(\S+)", line)
                                              for line in result.stdout.splitlines()) if match]
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-300:]
    section.add(f"`{shlex.join(command[1:]).replace(sys.executable, 'python')}`: {summary} "
                f"(whole run {elapsed:.0f} s, exit {result.returncode})")
    section.add()
    rows = [[seconds, test.replace("tests/test_compile.py::", "")] for seconds, test in durations]
    if rows:
        section.table(["seconds", "test (call phase)"], rows)
    section.verdict("torch.compile(fullgraph=True) works for every kind and every spec (tests/test_compile.py)",
                    result.returncode == 0, "-")
    compile_speedups(args, section)
    return section


