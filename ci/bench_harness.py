"""Speed of the harness against a plain PyTorch loop: MLP + backprop, one epoch of MNIST.

Both train the same 784-256-10 network (same initialisation seed, batch size 100,
Adam lr 1e-3) on the same in-memory tensors in this one process, and both evaluate
the validation and test splits at the end of the epoch, as the harness does. The
harness run goes through the registry, Lightning's Trainer and the record writer,
without the metric measurements (their cost is measured by bench_metrics_overhead.py).

Usage: python ci/bench_harness.py [--data-dir DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F


def plain_epoch(data, seed: int, batch_size: int) -> float:
    """One epoch of a hand-written loop plus evaluation; returns seconds."""
    from biobench_plugins.architectures.mlp import MLP

    started = time.perf_counter()
    net = MLP().build(784, 10, torch.Generator().manual_seed(seed)).module
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    order = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(seed))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(data.train_x[idx]), data.train_y[idx])
        loss.backward()
        opt.step()
    with torch.no_grad():
        for x, y in ((data.val_x, data.val_y), (data.test_x, data.test_y)):
            for s in range(0, len(x), 2000):
                logits = net(x[s : s + 2000])
                float(F.cross_entropy(logits, y[s : s + 2000]))
                int((logits.argmax(1) == y[s : s + 2000]).sum())
    return time.perf_counter() - started


def harness_epoch(registry, data_dir: str | None, seed: int, batch_size: int) -> tuple[float, float]:
    """One epoch through the harness; returns (total seconds, training-loop seconds)."""
    from biobench.training import runner

    with tempfile.TemporaryDirectory() as out:
        ctx = runner.RunContext(registry=registry, out_dir=Path(out), data_dir=data_dir, measurement_factories=[])
        (spec,) = runner.plan_grid(registry, ["mnist"], ["mlp"], ["backprop"], [seed], "ci", epochs=1,
                                   batch_size=batch_size)
        started = time.perf_counter()
        record = runner.execute(spec, ctx)
        total = time.perf_counter() - started
    assert record["status"] == "ok", record["reason"]
    return total, record["metrics"]["history"]["epoch_time_s"][0]


def main() -> None:
    """Print harness and plain-loop epoch times and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    from biobench.plugin_api.registry import load_registry
    from biobench.training.profiles import get_profile
    from biobench.training.runner import load_task_data

    registry = load_registry()
    task = registry.get("task", "mnist").cls()
    data = load_task_data(task, args.data_dir, get_profile("ci"))
    harness_epoch(registry, args.data_dir, 0, args.batch_size)  # warm-up: imports, data cache
    plain_epoch(data, 0, args.batch_size)
    plain, total, loop = [], [], []
    for i in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        plain.append(plain_epoch(data, i, args.batch_size))
        t, tl = harness_epoch(registry, args.data_dir, i, args.batch_size)
        total.append(t)
        loop.append(tl)
    p, h, hl = statistics.median(plain), statistics.median(total), statistics.median(loop)
    print(f"torch threads: {torch.get_num_threads()}, batch size {args.batch_size}, {args.repeats} repeats (median)")
    print(f"plain loop, epoch + evaluation:        {p:6.2f} s")
    print(f"harness, whole run (trainer, eval, record): {h:6.2f} s")
    print(f"harness, training loop only:           {hl:6.2f} s")
    print(f"ratio harness/plain (whole run):       {h / p:6.2f}x  (target <= 1.25x)")


if __name__ == "__main__":
    main()
