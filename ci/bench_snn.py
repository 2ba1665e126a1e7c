"""Speed of the harness on the spiking network: SNN + backprop (surrogate BPTT) against a plain snntorch loop.

Both train the same network in this one process: the ``snn`` architecture's ``ci``
configuration (784-128-10 LIF neurons, 10 time steps, beta 0.95, fast-sigmoid
surrogate), batch size 100, Adam lr 1e-3, one epoch of the ``ci`` profile's
training subset (the first 20,000 images), then evaluation of the validation and
test splits, as the harness does. The plain loop is written directly with
``torch.nn.Linear``, ``snntorch.Leaky`` and ``snntorch.spikegen.rate``, simulating
one layer over all time steps before the next (the same order of computation as
the ``snn`` plugin; a second plain loop that steps both layers at every time step,
the snntorch tutorials' order, is timed for reference). The harness run goes
through the registry, Lightning's Trainer and the record writer, without the
metric measurements (their cost is measured by bench_metrics_overhead.py).

Usage: python ci/bench_snn.py [--data-dir DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

HIDDEN, STEPS, BETA, SLOPE = 128, 10, 0.95, 25.0


class PlainSNN(nn.Module):
    """784-128-10 LIF network written directly with snntorch; ``layerwise`` picks the loop order."""

    def __init__(self, seed: int, layerwise: bool) -> None:
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        torch.manual_seed(seed)
        self.fc1, self.fc2 = nn.Linear(784, HIDDEN), nn.Linear(HIDDEN, 10)
        grad = surrogate.fast_sigmoid(slope=SLOPE)
        self.lif1, self.lif2 = snn.Leaky(beta=BETA, spike_grad=grad), snn.Leaky(beta=BETA, spike_grad=grad)
        self.layerwise = layerwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output spike counts for a batch of images in [0, 1]."""
        from snntorch import spikegen

        spikes = spikegen.rate(x, num_steps=STEPS)
        if self.layerwise:
            for fc, lif in ((self.fc1, self.lif1), (self.fc2, self.lif2)):
                current = fc(spikes)
                mem = torch.zeros_like(current[0])
                out = []
                for t in range(STEPS):
                    spk, mem = lif(current[t], mem)
                    out.append(spk)
                spikes = torch.stack(out)
            return spikes.sum(0)
        mem1 = torch.zeros(len(x), HIDDEN)
        mem2 = torch.zeros(len(x), 10)
        counts = torch.zeros(len(x), 10)
        for t in range(STEPS):
            spk1, mem1 = self.lif1(self.fc1(spikes[t]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            counts = counts + spk2
        return counts


def plain_epoch(data, seed: int, batch_size: int, layerwise: bool) -> tuple[float, float]:
    """One epoch of the plain loop plus evaluation; returns (total seconds, training seconds)."""
    started = time.perf_counter()
    net = PlainSNN(seed, layerwise)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    order = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(seed))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(data.train_x[idx]), data.train_y[idx])
        loss.backward()
        opt.step()
    training = time.perf_counter() - started
    with torch.no_grad():
        for x, y in ((data.val_x, data.val_y), (data.test_x, data.test_y)):
            for s in range(0, len(x), 2000):
                logits = net(x[s : s + 2000])
                float(F.cross_entropy(logits, y[s : s + 2000]))
                int((logits.argmax(1) == y[s : s + 2000]).sum())
    return time.perf_counter() - started, training


def harness_epoch(registry, data_dir: str | None, seed: int, batch_size: int) -> tuple[float, float, float]:
    """One ``ci`` epoch of snn/backprop through the harness; (total s, training-loop s, test acc)."""
    from biobench.training import runner

    with tempfile.TemporaryDirectory() as out:
        ctx = runner.RunContext(registry=registry, out_dir=Path(out), data_dir=data_dir, measurement_factories=[])
        (spec,) = runner.plan_grid(
            registry, ["mnist"], ["snn"], ["backprop"], [seed], "ci", epochs=1, batch_size=batch_size
        )
        started = time.perf_counter()
        record = runner.execute(spec, ctx)
        total = time.perf_counter() - started
    assert record["status"] == "ok", record["reason"]
    metrics = record["metrics"]
    return total, metrics["history"]["epoch_time_s"][0], metrics["test_acc"]


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
    from biobench_plugins.architectures.snn import SpikingNetwork

    registry = load_registry()
    arch_config = SpikingNetwork(**SpikingNetwork.profile_overrides["ci"]).config
    expected = {"hidden": HIDDEN, "num_steps": STEPS, "beta": BETA, "surrogate_slope": SLOPE}
    if any(arch_config[k] != v for k, v in expected.items()) or arch_config["surrogate"] != "fast_sigmoid":
        raise SystemExit(f"the plain loop no longer matches the snn ci configuration {arch_config}")
    profile = get_profile("ci").with_overrides(SpikingNetwork.run_overrides["ci"])
    data = load_task_data(registry.get("task", "mnist").cls(), args.data_dir, profile)
    harness_epoch(registry, args.data_dir, 0, args.batch_size)  # warm-up: imports, data cache
    plain_epoch(data, 0, args.batch_size, layerwise=True)
    plain, plain_train, stepwise, total, loop, accs = [], [], [], [], [], []
    for i in range(args.repeats):  # interleaved, so drifting machine load hits all alike
        p, pt = plain_epoch(data, i, args.batch_size, layerwise=True)
        plain.append(p)
        plain_train.append(pt)
        stepwise.append(plain_epoch(data, i, args.batch_size, layerwise=False)[0])
        t, tl, acc = harness_epoch(registry, args.data_dir, i, args.batch_size)
        total.append(t)
        loop.append(tl)
        accs.append(acc)
    med = statistics.median
    print(
        f"torch threads: {torch.get_num_threads()}, batch size {args.batch_size}, "
        f"{len(data.train_x)} training images, {args.repeats} repeats (median)"
    )
    print(f"plain snntorch loop (layer by layer), epoch + evaluation: {med(plain):6.2f} s")
    print(f"plain snntorch loop (layer by layer), training only:      {med(plain_train):6.2f} s")
    print(f"plain snntorch loop (step by step), epoch + evaluation:   {med(stepwise):6.2f} s")
    print(f"harness, whole run (trainer, eval, record):               {med(total):6.2f} s")
    print(f"harness, training loop only (the record's epoch time):    {med(loop):6.2f} s")
    print(f"harness test accuracy after the epoch:                    {med(accs):6.4f}")
    print(f"ratio harness/plain (whole run):    {med(total) / med(plain):6.2f}x  (target <= 1.25x)")
    print(f"ratio harness/plain (training only): {med(loop) / med(plain_train):5.2f}x")


if __name__ == "__main__":
    main()
