"""Epoch time of the KAN architecture: plain pykan loop vs biobench's harness, in one process.

Three training loops on the same MNIST training examples, batch size, width,
grid and optimiser (Adam, lr 1e-3, cross-entropy), timed over the training
batches only (evaluation excluded):

* ``pykan``: pykan's own ``MultKAN(width=[784, hidden, 10])`` with the symbolic
  branch and activation saving off, a bare PyTorch loop;
* ``module``: biobench's ``kan`` network, the same bare loop (the cost of the
  architecture without the harness);
* ``harness``: ``biobench run`` for ``kan``/``backprop`` (Lightning, the rule
  interface and every harness measurement callback); its record's
  ``time_per_epoch_s``.

The loops alternate for ``--repeats`` rounds (the machine may be shared) and the
median epoch time of each is reported, with the ratios harness/pykan and
harness/module (the harness overhead proper). Example::

    python ci/bench_kan.py --data-dir ../shared/datasets --profile ci --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from biobench.plugin_api.registry import load_registry
from biobench.training import runner
from biobench.training.batches import TensorBatches

TARGET_RATIO = 1.25


def _loop_epoch(forward, parameters, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> float:
    """Seconds for one epoch of Adam steps with ``forward`` over ``(x, y)``."""
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    batches = TensorBatches(x, y, batch_size, shuffle=True, seed=seed)
    started = time.perf_counter()
    for xb, yb in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(xb), yb)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def _pykan_model(sizes: list[int], arch_config: dict, seed: int):
    from kan import MultKAN

    with torch.random.fork_rng(devices=[]):
        return MultKAN(
            width=list(sizes),
            grid=int(arch_config["grid_size"]),
            k=int(arch_config["spline_order"]),
            noise_scale=float(arch_config["noise_scale"]),
            grid_range=list(arch_config["grid_range"]),
            symbolic_enabled=False,
            save_act=False,
            auto_save=False,
            seed=seed,
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the epoch times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--hidden", type=int, default=None, help="hidden width (default: the profile's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    registry = load_registry()
    options = () if args.hidden is None else (("hidden", [args.hidden]),)
    spec = runner.RunSpec("mnist", "kan", "backprop", args.seed, args.profile, epochs=1,
                          architecture_options=options)
    task, architecture, _, profile, config = runner.resolve(spec, registry)
    data = runner.load_task_data(task, args.data_dir, profile)
    sizes = [task.input_size, *architecture.config["hidden"], task.num_classes]
    print(f"threads={torch.get_num_threads()} profile={args.profile} sizes={sizes} "
          f"grid={architecture.config['grid_size']} k={architecture.config['spline_order']} "
          f"train_examples={len(data.train_x)} batch_size={profile.batch_size}")

    times: dict[str, list[float]] = {"pykan": [], "module": [], "harness": []}
    with tempfile.TemporaryDirectory() as out:
        ctx = runner.RunContext(registry=registry, out_dir=Path(out), data_dir=args.data_dir, force=True)
        for round_index in range(args.repeats):
            model = _pykan_model(sizes, architecture.config, args.seed)
            times["pykan"].append(
                _loop_epoch(model, model.parameters(), data.train_x, data.train_y, profile.batch_size, args.seed)
            )
            network = architecture.build(task.input_size, task.num_classes, torch.Generator().manual_seed(args.seed))
            times["module"].append(
                _loop_epoch(network, network.module.parameters(), data.train_x, data.train_y,
                            profile.batch_size, args.seed)
            )
            record = runner.execute(spec, ctx)
            if record["status"] != "ok":
                raise SystemExit(f"harness run {record['status']}: {record['reason']}")
            times["harness"].append(record["metrics"]["time_per_epoch_s"])
            print(f"round {round_index + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))

    median = {k: statistics.median(v) for k, v in times.items()}
    print("median epoch time: " + ", ".join(f"{k} {v:.2f} s" for k, v in median.items()))
    ratio = median["harness"] / median["pykan"]
    overhead = median["harness"] / median["module"]
    print(f"harness / pykan loop: {ratio:.2f}x (target <= {TARGET_RATIO}x)")
    print(f"harness / same module in a bare loop: {overhead:.2f}x")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
