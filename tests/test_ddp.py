"""Issue 6: a built model trains under torch.nn.parallel.DistributedDataParallel (gloo, 2 processes, CPU).

Both a plain sequence (``nn.Sequential``) and a graph with two outputs (``torch.fx.GraphModule``) are trained.

Each rank sees different data. Every step, each rank first computes its own gradient without syncing
(``no_sync``), then the synced one: the synced gradients must be identical on both ranks and equal to
the mean of the two local ones (so the all-reduce really happened), and the parameters after the
optimizer steps must be identical on both ranks.
"""
from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import netspec

WORLD_SIZE = 2
STEPS = 3
SPEC = """
name: ddp_small
input: {channels: 3, size: 16}
layers:
  - conv: {out: 16}
  - stage: {block: basic, out: 32, depth: 1, stride: 2, attention: se}
  - cbam
  - avgpool
  - linear: {out: 5}
"""

# Two heads (each 5 classes) on branches of a named stem, with concat, an SE-style gate multiplied on, and add.
GRAPH_SPEC = """
name: ddp_graph
input: {channels: 3, size: 16}
layers:
  - conv: {out: 16}
    name: stem
  - stage: {block: basic, out: 32, depth: 1, stride: 2, attention: se}
    name: deep
  - conv: {out: 16, stride: 2}
    from: stem
    name: side
  - concat: {}
    from: [deep, side]
  - avgpool: {size: 1}
  - conv: {out: 48, kernel: 1, norm: none, act: sigmoid}
    name: gate
  - mul: {}
    from: [concat1, gate]
  - cbam: {}
  - avgpool: {}
  - linear: {out: 5}
    name: main
  - upsample: {to: stem}
    from: side
  - add: {}
    from: [upsample1, stem]
  - avgpool: {}
  - linear: {out: 5}
    name: aux
outputs: [main, aux]
"""


def loss(outputs: torch.Tensor | tuple[torch.Tensor, ...], labels: torch.Tensor) -> torch.Tensor:
    """Cross entropy, summed over the model's outputs when it returns several."""
    heads = outputs if isinstance(outputs, tuple) else (outputs,)
    return sum(F.cross_entropy(head, labels) for head in heads)  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train(rank: int, port: int, results: str, spec: str) -> None:
    """One rank: the README recipe (init gloo, build, wrap in DDP, train), recording gradients."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE, timeout=timedelta(seconds=60))
    try:
        torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's at wrap time
        model = DistributedDataParallel(netspec.build(netspec.loads(spec)))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        data = torch.Generator().manual_seed(1000 + rank)  # each rank its own shard of data
        record: dict[str, list[list[torch.Tensor]]] = {"local": [], "synced": []}
        for _ in range(STEPS):
            images = torch.randn(4, 3, 16, 16, generator=data)
            labels = torch.randint(0, 5, (4,), generator=data)
            for kind in ("local", "synced"):
                optimizer.zero_grad(set_to_none=True)
                if kind == "local":
                    with model.no_sync():
                        loss(model(images), labels).backward()
                else:
                    loss(model(images), labels).backward()
                record[kind].append([p.grad.detach().clone() for p in model.parameters()])
            optimizer.step()
        params = [p.detach().clone() for p in model.module.parameters()]
        torch.save({"params": params, **record}, Path(results) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")
@pytest.mark.parametrize("spec", [SPEC, GRAPH_SPEC], ids=["sequence", "graph"])
def test_ddp_gloo_two_processes_agree(tmp_path: Path, spec: str) -> None:
    mp.spawn(train, args=(free_port(), str(tmp_path), spec), nprocs=WORLD_SIZE, join=True)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]
    n_params = len(ranks[0]["params"])
    model = netspec.build(netspec.loads(spec))
    assert isinstance(model, torch.fx.GraphModule) == (spec is GRAPH_SPEC)
    assert n_params == len(list(model.parameters())) > 0
    for step in range(STEPS):
        local = [rank["local"][step] for rank in ranks]
        synced = [rank["synced"][step] for rank in ranks]
        # different data on each rank: local gradients differ ...
        assert any(not torch.allclose(a, b) for a, b in zip(*local))
        for index in range(n_params):
            # ... the synced ones are the same everywhere, and are the mean of the local ones
            torch.testing.assert_close(synced[0][index], synced[1][index], rtol=0, atol=0)
            mean = (local[0][index] + local[1][index]) / WORLD_SIZE
            torch.testing.assert_close(synced[0][index], mean, rtol=1e-4, atol=1e-6)
    for a, b in zip(ranks[0]["params"], ranks[1]["params"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
