"""What a rule costs: synaptic operations (NeuroBench), matrix-product MACs and peak memory, on analytic cases."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from biobench import PlasticLinear
from biobench.metrics import catalog, cost
from biobench.metrics.base import ScatterFigure
from biobench.metrics.measurement import RunState
from biobench.plugin_api.interfaces import TaskData
from biobench.results import leaderboard as lb
from biobench.results import records
from biobench.results import report as report_mod
from biobench_plugins.architectures.kan import KAN
from biobench_plugins.architectures.mlp import MLP
from biobench_plugins.architectures.snn import SpikingNetwork
from biobench_plugins.rules.backprop import Backprop
from biobench_plugins.tasks.mnist import Mnist

FIXTURES = Path(__file__).parent / "fixtures" / "records"


def _linear(weight: list[list[float]]) -> PlasticLinear:
    layer = PlasticLinear("fc", len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    return layer


def test_a_dense_layer_counts_every_connection_and_the_active_ones_times_their_fan_out():
    layer = _linear([[1.0, 0.0, 2.0], [3.0, 4.0, 0.0]])  # fan-out of inputs 0, 1, 2: 2, 1, 1
    x = torch.tensor([[1.5, 0.0, 2.0], [0.0, 0.0, 0.5]])  # input 0 active once, input 2 twice
    assert layer.synaptic_operations(x) == (12.0, 1 * 2 + 0 * 1 + 2 * 1, False)
    spikes = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, -1.0]])
    assert layer.synaptic_operations(spikes) == (12.0, 2 + 2 * 1 + 1, True)  # {-1, 0, 1}: accumulates


def test_the_counter_sums_over_calls_and_divides_by_examples():
    layer = _linear([[1.0, 0.0, 2.0], [3.0, 4.0, 0.0]])
    counter = cost.OperationCounter([layer])
    with counter:
        layer(torch.tensor([[1.5, 0.0, 2.0], [0.0, 0.0, 0.5]]))  # 4 MACs
        layer(torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))  # binary: 2 + 1 + 1 = 4 ACs
    layer(torch.ones(5, 3))  # after the context: not counted
    outcome = counter.per_example(4)
    assert outcome.value["dense"] == 24 / 4 and outcome.value["effective_macs"] == 1.0
    assert outcome.value["effective_acs"] == 1.0 and outcome.value["per_layer"]["fc"]["dense"] == 6.0
    assert not outcome.reasons


def test_a_spiking_layer_counts_presynaptic_spikes_times_fan_out_per_step():
    network = SpikingNetwork(hidden=3, num_steps=4).build(4, 2, torch.Generator().manual_seed(0))
    layer = network.layers[0]
    with torch.no_grad():
        layer.weight[:, 3] = 0.0  # input 3 has no synapses: its spikes cost nothing
    spikes = torch.zeros(4, 2, 4)  # (time, batch, in)
    spikes[0, 0, 0] = spikes[1, 0, 0] = spikes[3, 1, 0] = 1.0  # 3 spikes of input 0
    spikes[2, 1, 2] = 1.0  # 1 spike of input 2
    spikes[:, :, 3] = 1.0  # 8 spikes of input 3 (fan-out 0)
    dense, effective, binary = layer.synaptic_operations(spikes)
    assert (dense, effective, binary) == (4 * 2 * 4 * 3, (3 + 1) * 3 + 8 * 0, True)


def test_a_kan_layer_counts_coefficients_and_base_weights_with_non_zero_factors():
    network = KAN(hidden=[3]).build(2, 2, torch.Generator().manual_seed(0))
    layer = network.layers[0]  # 2 -> 3, grid 5 on [-1, 1], cubic: 8 basis functions per edge
    # x = 0.1 is not a knot: 4 non-zero cubic B-splines, SiLU(0.1) != 0 -> 5 synapses per edge;
    # x = 0 is not a knot either (knots at +-0.2, +-0.6, +-1): 4 B-splines, SiLU(0) = 0 -> 4.
    dense, effective, binary = layer.synaptic_operations(torch.tensor([[0.1, 0.0]]))
    assert (dense, effective, binary) == (1 * 2 * 3 * (8 + 1), 3 * (5 + 4), False)
    with torch.no_grad():
        layer.mask[1, :2] = 0.0  # prune two edges of input 1
    assert layer.synaptic_operations(torch.tensor([[0.1, 0.0]]))[1] == 3 * 5 + 1 * 4


def _run_state(network, rule, batch: int = 4, examples: int = 6) -> RunState:
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(examples, 5, generator=g), torch.randint(0, 2, (examples,), generator=g)
    data = TaskData(x, y, x[:0], y[:0], x, y)
    profile = type("Profile", (), {"batch_size": batch})()
    return RunState(seed=0, network=network, rule=rule, task=Mnist(), data=data, profile=profile)


def test_a_known_mlp_costs_its_connections_forward_and_twice_more_for_a_backprop_update():
    network = MLP(hidden=[3]).build(5, 2, torch.Generator().manual_seed(0))
    rule = Backprop()
    rule.bind(network, torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in network.module.parameters()]
    measurement = cost.CostMeasurement(_run_state(network, rule), inference_examples=6)
    measurement.at_start(0)
    measurement.at_end(1, 0)
    metrics, reasons = {}, {}
    measurement.contribute(metrics, reasons, finished=True)
    assert metrics["inference_synops"]["dense"] == 5 * 3 + 3 * 2
    assert metrics["update_synops"]["dense"] == 5 * 3 + 3 * 2  # backprop makes one forward pass
    assert metrics["inference_macs"] == 5 * 3 + 3 * 2
    # forward 15 + 6; backward: weight gradients 15 + 6, input gradient of the second layer 6
    assert metrics["update_macs"] == 2 * (5 * 3) + 3 * (3 * 2)
    effective = metrics["inference_synops"]["effective_macs"]
    assert 0 < effective <= 21 and metrics["inference_synops"]["effective_acs"] == 0
    assert all(torch.equal(a, b) for a, b in zip(before, network.module.parameters(), strict=True))
    assert all(p.grad is None for p in network.module.parameters())  # training state restored
    assert metrics["cost_probe"]["update_examples"] == 4 and metrics["cost_probe"]["inference_examples"] == 6
    assert metrics["peak_rss_bytes"] >= metrics["peak_rss_growth_bytes"] >= 0 and not reasons


def test_costs_are_null_with_reasons_when_training_stopped_or_memory_cannot_be_reset(monkeypatch, tmp_path):
    network = MLP(hidden=[3]).build(5, 2, torch.Generator().manual_seed(0))
    rule = Backprop()
    rule.bind(network, torch.Generator().manual_seed(0))
    monkeypatch.setattr(cost, "PROC_CLEAR_REFS", tmp_path / "absent" / "clear_refs")
    measurement = cost.CostMeasurement(_run_state(network, rule))
    measurement.at_start(0)
    metrics, reasons = {}, {}
    measurement.contribute(metrics, reasons, finished=False)
    assert metrics["update_macs"] is None and "training stopped" in reasons["update_macs"]
    assert metrics["peak_rss_growth_bytes"] is None and "cannot be reset" in reasons["peak_rss_growth_bytes"]


def test_the_scatter_of_accuracy_against_cost_is_drawn_from_records(tmp_path):
    recs = copy.deepcopy(records.read_records(FIXTURES))
    for i, r in enumerate(recs):
        r["metrics"]["update_macs"] = 1000.0 * (i + 1)
        r["metrics"]["peak_rss_growth_bytes"] = 1e6 * (i + 1)
    (spec,) = [f for f in catalog.figures() if isinstance(f, ScatterFigure)]
    report = report_mod.Report()
    report_mod.draw_scatter(spec, report_mod.grouped(recs), report_mod.Palette(recs), tmp_path, report)
    assert [f.name for f in report.figures] == ["accuracy_vs_cost_mnist_smoke.png"] and not report.notes
    assert (tmp_path / "accuracy_vs_cost_mnist_smoke.png").stat().st_size > 10_000
    assert ("cost", "Accuracy against cost") in report_mod.SECTIONS
    for r in recs:
        for key in ("update_macs", "peak_rss_growth_bytes", "time_per_epoch_s"):
            r["metrics"].pop(key, None)
    report = report_mod.Report()
    report_mod.draw_scatter(spec, report_mod.grouped(recs), report_mod.Palette(recs), tmp_path, report)
    assert not report.figures and "no ok record has the values" in report.notes[0]
    assert {"update_macs", "inference_synops_effective", "peak_rss_growth_mb"} <= {c.key for c in lb.metric_columns()}


def test_the_harness_writes_cost_entries_that_validate(tmp_path, data_dir):
    from helpers import run_context

    from biobench.training import runner

    ctx = run_context(tmp_path, data_dir, measurement_factories=[cost.cost_measurement])
    (spec,) = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["backprop"], [0], "smoke")
    spec = runner.RunSpec(**{**spec.__dict__, "architecture_options": (("hidden", [16]),)})
    record = runner.execute(spec, ctx)
    stored = records.read_record(ctx.record_path(spec))  # schema-validated
    m = stored["metrics"]
    assert record["status"] == "ok" and m["inference_synops"]["dense"] == 784 * 16 + 16 * 10
    assert m["update_macs"] == 2 * 784 * 16 + 3 * 16 * 10
    assert set(m["update_synops"]["per_layer"]) == {"fc1", "fc2"}
    with pytest.raises(records.RecordError):
        bad = copy.deepcopy(stored)
        bad["metrics"]["update_macs"] = -1
        records.validate_record(bad)
