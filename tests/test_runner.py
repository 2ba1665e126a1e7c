"""Running pairings: records, unsupported pairings, failures, resume after an interrupted grid."""

from __future__ import annotations

import pytest
import torch
from helpers import run_context

from biobench import LearningRule, execution
from biobench.plugin_api.registry import PluginSource
from biobench.results import records
from biobench.training import runner
from biobench.training.batches import TensorBatches


def test_smoke_run_writes_a_valid_record(tmp_path, data_dir):
    ctx = run_context(tmp_path, data_dir)
    (spec,) = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["backprop"], [0], "smoke")
    record = runner.execute(spec, ctx)
    stored = records.read_record(ctx.record_path(spec))
    assert stored["status"] == "ok" and record["run_id"] == stored["run_id"]
    m = stored["metrics"]
    assert m["epochs"] == 1 and len(m["history"]["train_loss"]) == 1
    assert 0.5 < m["test_acc"] <= 1.0  # 20 Adam steps on MNIST already beat chance by far
    assert m["parameter_count"] == 784 * 256 + 256 + 256 * 10 + 10
    assert stored["data"]["train_examples"] == 2000 and stored["config"]["run"]["threads"] == 1
    assert stored["config"]["run"]["optimizer"]["name"] == "adam"
    assert stored["config"]["rule"]["distribution"] == "biobench"
    assert stored["environment"]["packages"]["torch"].startswith("2.")


def test_a_run_without_validation_split_records_why_val_acc_is_null(tmp_path, data_dir):
    import dataclasses

    ctx = run_context(tmp_path, data_dir)
    (spec,) = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["backprop"], [0], "smoke")
    spec = dataclasses.replace(spec, run_options=(("validation", False),))
    runner.execute(spec, ctx)
    stored = records.read_record(ctx.record_path(spec))  # validated: every null metric has a reason
    assert stored["status"] == "ok" and stored["metrics"]["val_acc"] is None
    assert "no validation split" in stored["metric_reasons"]["val_acc"]
    assert stored["metrics"]["test_acc"] > 0.5


class _NeedsTime(LearningRule):
    name = "needs-time"
    description = "Test rule requiring spiking dynamics"
    requires = frozenset({"time"})
    weight_transport = False
    global_error = False

    def compute_update(self, x, y, loss_fn):
        raise AssertionError("never called for an unsupported pairing")


class _Explodes(LearningRule):
    name = "explodes"
    description = "Test rule that raises"
    weight_transport = False
    global_error = False

    def compute_update(self, x, y, loss_fn):
        raise RuntimeError("deliberate failure")


class _Interrupts(LearningRule):
    name = "interrupts"
    description = "Test rule that simulates Ctrl-C"
    weight_transport = False
    global_error = False
    armed = True

    def compute_update(self, x, y, loss_fn):
        if _Interrupts.armed:
            raise KeyboardInterrupt
        with self.network.plain():
            logits = self.network(x)
            loss = loss_fn(logits, y)
            loss.backward()
        return loss.detach(), logits.detach()


class _TestRules:
    from biobench import hookimpl

    @hookimpl
    def biobench_register_rules(self):
        return [_NeedsTime, _Explodes, _Interrupts]


EXTRA = [(PluginSource("test-rules", "tests", "tests", "0"), _TestRules())]


def test_unsupported_and_failed_pairings_become_records(tmp_path, data_dir):
    ctx = run_context(tmp_path, data_dir, EXTRA)
    specs = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["needs-time", "explodes"], [0], "smoke")
    unsupported, failed = execution.run(specs, ctx)
    assert unsupported["status"] == "unsupported" and "time" in unsupported["reason"]
    assert failed["status"] == "failed" and "deliberate failure" in failed["reason"]
    assert "Traceback" in failed["reason"]
    for spec in specs:
        records.read_record(ctx.record_path(spec))


def test_resume_after_interrupted_grid(tmp_path, data_dir):
    ctx = run_context(tmp_path, data_dir, EXTRA)
    specs = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["backprop", "interrupts"], [0], "smoke")
    _Interrupts.armed = True
    with pytest.raises(KeyboardInterrupt):
        execution.run(specs, ctx)
    assert ctx.record_path(specs[0]).exists()
    assert not ctx.record_path(specs[1]).exists()
    assert [p.name for p in tmp_path.glob(".*.tmp")] == []
    first_written = ctx.record_path(specs[0]).stat().st_mtime_ns

    _Interrupts.armed = False
    done, resumed = execution.run(specs, ctx)
    assert done.get("skipped") is True
    assert ctx.record_path(specs[0]).stat().st_mtime_ns == first_written
    assert resumed["status"] == "ok" and not resumed.get("skipped")

    forced = execution.run(specs[:1], run_context(tmp_path, data_dir, EXTRA, force=True))[0]
    assert not forced.get("skipped")


def test_changed_config_is_not_skipped(tmp_path, data_dir):
    ctx = run_context(tmp_path, data_dir)
    (spec,) = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["backprop"], [0], "smoke")
    runner.execute(spec, ctx)
    (longer,) = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["backprop"], [0], "smoke", epochs=2)
    record = runner.execute(longer, ctx)
    assert not record.get("skipped") and record["metrics"]["epochs"] == 2


def test_block_stepped_training_makes_the_updates_of_a_per_batch_loop(tmp_path, data_dir):
    """Lightning steps over blocks of mini-batches; the updates are exactly those of a plain loop."""
    ctx = run_context(tmp_path, data_dir)
    # 2,000 examples in batches of 150: 14 mini-batches per epoch, a full block and a partial one
    (spec,) = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["feedback_alignment"], [3], "smoke",
                               epochs=2, batch_size=150)
    advanced, started = [], []
    ctx.progress = runner.Progress(start=lambda s, total: started.append(total),
                                   advance=lambda steps, text: advanced.append(steps))
    record = runner.execute(spec, ctx)
    assert record["status"] == "ok"
    assert started == [28] and sum(advanced) == 28  # progress counts mini-batches

    resolved = runner.resolve(spec, ctx.registry)
    task, architecture, rule_cls, profile, config = (
        resolved.task, resolved.architecture, resolved.rule_cls, resolved.profile, resolved.config
    )
    torch.manual_seed(spec.seed)
    data = runner.load_task_data(task, data_dir, profile)
    generator = torch.Generator().manual_seed(spec.seed)
    network = architecture.build(task.input_size, task.num_classes, generator)
    rule = rule_cls(**config["rule"]["config"])
    rule.bind(network, generator)
    optimizer = rule.configure_optimizer(rule.trainable_parameters())
    batches = TensorBatches(data.train_x, data.train_y, 150, shuffle=True, seed=spec.seed)
    losses = []
    for _ in range(2):
        total, seen = 0.0, 0
        for x, y in batches:
            optimizer.zero_grad(set_to_none=True)
            loss, _ = rule.compute_update(x, y, task.loss)
            optimizer.step()
            rule.after_step()
            total, seen = total + float(loss) * len(y), seen + len(y)
        losses.append(total / seen)
    assert record["metrics"]["history"]["train_loss"] == losses


@pytest.mark.slow
def test_ci_profile_mlp_backprop_reaches_95_percent(tmp_path, data_dir):
    torch.set_num_threads(2)
    ctx = run_context(tmp_path, data_dir)
    (spec,) = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["backprop"], [0], "ci")
    record = runner.execute(spec, ctx)
    assert record["status"] == "ok"
    assert record["metrics"]["test_acc"] >= 0.95
    assert record["data"]["train_examples"] == 55000
