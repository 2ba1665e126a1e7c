"""RDMs of trained networks, their comparison and the 2-D projection (biobench.representations)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from biobench.metrics import representations as rsa
from biobench.metrics.measurement import RunState
from biobench.plugin_api.interfaces import TaskData
from biobench.plugin_api.layers import LayerSignals
from biobench.results import geometry
from biobench.results.records import read_records

FIXTURES = Path(__file__).parent / "fixtures" / "records"


def test_probe_indices_are_the_first_of_each_class_grouped_by_class():
    labels = torch.tensor([1, 0, 1, 0, 2, 2, 0, 1, 2])
    assert rsa.probe_indices(labels, num_classes=3, per_class=2) == [1, 3, 0, 2, 4, 5]


def test_probe_indices_refuse_an_unbalanced_probe():
    with pytest.raises(ValueError, match="class 2 has 1 test examples"):
        rsa.probe_indices(torch.tensor([0, 1, 2, 0, 1]), num_classes=3, per_class=2)


def test_correlation_rdm_matches_hand_computation():
    patterns = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [1.0, 2.0, 4.0]])
    # r(p0, p2) = 3 / (sqrt(2) * sqrt(42) / 3) = 9 / sqrt(84); r(p0, p1) = -1; r(p1, p2) = -r(p0, p2)
    r02 = 9 / math.sqrt(84)
    vector = rsa.compute_rdm(patterns, [0, 1, 2])
    np.testing.assert_allclose(vector, [2.0, 1 - r02, 1 + r02], atol=1e-12)


def test_constant_pattern_gives_no_rdm():
    patterns = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [1.0, 2.0, 4.0]])
    assert rsa.compute_rdm(patterns, [0, 1, 2]) is None


class _Layer:
    def __init__(self, name: str) -> None:
        self.layer_name = name


class _FakeSpikingNetwork:
    """Two layers: a time-major one (3 steps) and a static one."""

    def __init__(self) -> None:
        self.layers = [_Layer("spiking"), _Layer("readout")]

    def forward_with_signals(self, x):
        spikes = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 1.0]]]).expand(3, len(x), 2)
        post = torch.tensor([[0.5, -0.5]]).expand(len(x), 2)
        return post, [
            LayerSignals(pre=x, drive=spikes, post=spikes, time_major=True),
            LayerSignals(pre=x, drive=post, post=post),
        ]


def test_spiking_layers_use_spike_counts():
    patterns = rsa.layer_patterns(_FakeSpikingNetwork(), torch.zeros(4, 5))
    (name0, p0, what0), (name1, p1, what1) = patterns
    assert (name0, name1) == ("spiking", "readout")
    np.testing.assert_array_equal(p0, np.tile([[2.0, 2.0]], (4, 1)))
    assert what0.startswith("spike count")
    np.testing.assert_array_equal(p1, np.tile([[0.5, -0.5]], (4, 1)))
    assert what1 == "post-synaptic activity"


def _mlp_and_data(seed: int = 0):
    from biobench_plugins.architectures.mlp import MLP

    gen = torch.Generator().manual_seed(seed)
    network = MLP(hidden=[16]).build(20, 3, gen)
    x = torch.rand(30, 20, generator=gen)
    y = torch.arange(30) % 3
    return network, TaskData(x, y, x, y, x, y)


def test_measure_stores_upper_triangles_and_leaves_the_network_as_it_was():
    from biobench_plugins.rules.backprop import Backprop

    network, data = _mlp_and_data()
    rule = Backprop()
    rule.bind(network, torch.Generator().manual_seed(0))
    network.module.train()
    before = [p.detach().clone() for p in network.module.parameters()]
    rng_before = torch.get_rng_state()
    value, reasons = rsa.measure(network, data, num_classes=3, seed=0, rule=rule)
    assert reasons == {}
    n = 3 * rsa.PROBE_PER_CLASS
    assert value["probe"]["indices"] == [i for c in range(3) for i in range(c, 30, 3)[: rsa.PROBE_PER_CLASS]]
    assert value["probe"]["labels"] == sorted(value["probe"]["labels"])
    assert [layer["name"] for layer in value["layers"]] == ["fc1", "fc2"]
    assert [layer["units"] for layer in value["layers"]] == [16, 3]
    for layer in value["layers"]:
        assert len(layer["rdm"]) == n * (n - 1) // 2
        assert all(0.0 <= v <= 2.0 for v in layer["rdm"])
    # the stored vector is rsatoolbox's RDM of the layer's activity on the probe images
    x = data.test_x[value["probe"]["indices"]]
    with torch.no_grad():
        hidden = torch.relu(network.layers[0](x)).numpy()
    np.testing.assert_allclose(
        value["layers"][0]["rdm"], rsa.compute_rdm(hidden.astype(np.float64), value["probe"]["labels"]),
        atol=10 ** -rsa.RDM_DECIMALS,
    )
    assert network.module.training
    assert all(torch.equal(a, b) for a, b in zip(before, network.module.parameters(), strict=True))
    assert torch.equal(rng_before, torch.get_rng_state())
    again, _ = rsa.measure(network, data, num_classes=3, seed=0, rule=rule)
    assert again == value


def test_callback_reports_null_with_reason_when_training_did_not_end():
    network, data = _mlp_and_data()

    class _Spec:
        seed = 0

    class _Task:
        num_classes = 3

    callback = rsa.representation_measurement(RunState(seed=_Spec.seed, network=network, rule=None, task=_Task(), data=data, profile=None))
    metrics, reasons = {}, {}
    callback.contribute(metrics, reasons, finished=False)
    assert metrics == {"representations": None}
    assert "did not reach its end" in reasons["representations"]


def test_similarity_is_spearman_of_upper_triangles():
    a = [0.1, 0.5, 0.3, 0.9, 0.7, 0.2]
    monotone = [2 * v + 1 for v in a]
    reversed_order = [-v for v in a]
    sim = geometry.similarity_matrix([a, monotone, reversed_order])
    np.testing.assert_allclose(sim, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-12)


def test_mds_recovers_an_embeddable_configuration():
    points = np.array([[0.0, 0.0], [0.6, 0.0], [0.6, 0.3], [0.0, 0.3], [0.3, 0.45]])
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    coords, stress = geometry.mds_projection(1.0 - distances)
    recovered = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.testing.assert_allclose(recovered, distances, atol=2e-3)
    assert stress < 1e-3


def test_canonical_orientation_removes_rotation_and_reflection():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(6, 2)) * [3.0, 1.0]
    theta = 0.7
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    mirrored = (points @ rotation.T) * [-1.0, 1.0] + [5.0, -2.0]
    np.testing.assert_allclose(geometry.canonical_orientation(points), geometry.canonical_orientation(mirrored), atol=1e-10)


def test_analyse_fixture_records():
    recs = read_records(FIXTURES)
    result = geometry.analyse(recs)
    keys = [p["key"] for p in result["pairings"]]
    ok_pairings = {f"{r['task']}/{r['architecture']}/{r['rule']}" for r in recs if r["status"] == "ok"}
    assert set(keys) == ok_pairings
    assert result["probe"]["per_class"] == rsa.PROBE_PER_CLASS
    constant = {
        f"{r['task']}/{r['architecture']}/{r['rule']}" for r in recs if r["status"] == "ok"
        for layer in r["metrics"]["representations"]["layers"] if layer["rdm"] is None
    }
    for slot in geometry.SLOTS:
        block = result["slots"][slot]
        n = len(block["pairings"])
        assert ok_pairings - constant <= set(block["pairings"]) <= ok_pairings
        sim = np.array(block["similarity"], dtype=float)
        np.testing.assert_allclose(sim, sim.T, atol=1e-4)
        np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-4)
        coords = np.array(block["mds"]["coordinates"])
        assert coords.shape == (n, 2)
        np.testing.assert_allclose(coords.mean(axis=0), 0.0, atol=1e-3)
    within = {(b["architecture"], b["layer"]) for b in result["within_architecture"]}
    assert ("mlp", "fc1") in within
    assert result["across_architectures"], "backprop is trained on two architectures in the fixtures"
    assert all(len(set(b["architectures"])) == len(b["architectures"]) for b in result["across_architectures"])
    assert geometry.analyse(recs) == result


def test_seed_average_is_the_mean_of_the_seeds_rdms():
    recs = [r for r in read_records(FIXTURES) if r["architecture"] == "mlp" and r["rule"] == "backprop"]
    assert len(recs) >= 2
    pairings, _, _ = geometry.collect(recs)
    (pairing,) = pairings
    expected = np.mean([r["metrics"]["representations"]["layers"][0]["rdm"] for r in recs], axis=0)
    np.testing.assert_allclose(pairing.layers["fc1"], expected, atol=1e-12)


@pytest.mark.slow
def test_a_real_run_records_its_rdms(tmp_path, data_dir, registry):
    from biobench.results import records
    from biobench.training import runner

    ctx = runner.RunContext(
        registry=registry, out_dir=tmp_path, data_dir=data_dir,
        measurement_factories=[rsa.representation_measurement],
    )
    spec = runner.RunSpec("mnist", "mlp", "backprop", seed=0, profile="smoke")
    record = runner.execute(spec, ctx)
    assert record["status"] == "ok"
    stored = records.read_record(ctx.record_path(spec))["metrics"]["representations"]
    assert stored["probe"]["labels"] == [c for c in range(10) for _ in range(rsa.PROBE_PER_CLASS)]
    assert [layer["name"] for layer in stored["layers"]] == ["fc1", "fc2"]
    assert all(len(layer["rdm"]) == 50 * 49 // 2 for layer in stored["layers"])


def test_a_broken_probe_pass_is_recorded_not_raised():
    network, data = _mlp_and_data()

    class _Spec:
        seed = 0

    class _Task:
        num_classes = 3

    def broken(x):
        raise RuntimeError("no signals today")

    network.forward_with_signals = broken
    callback = rsa.representation_measurement(RunState(seed=_Spec.seed, network=network, rule=None, task=_Task(), data=data, profile=None))
    callback.at_end(1, 1)
    metrics, reasons = {}, {}
    callback.contribute(metrics, reasons, finished=True)
    assert metrics == {"representations": None}
    assert reasons == {"representations": "the probe pass raised RuntimeError: no signals today"}


def test_every_similarity_matrix_is_a_correlation_matrix_even_with_a_constant_rdm():
    recs = read_records(FIXTURES)
    constant = copy.deepcopy(next(r for r in recs if r["status"] == "ok" and r["architecture"] == "kan"))
    constant["rule"] = "constant-rule"
    for layer in constant["metrics"]["representations"]["layers"]:
        layer["rdm"] = [0.5] * len(layer["rdm"] or [0.0] * 1225)
    result = geometry.analyse([*recs, constant])
    blocks = [*result["within_architecture"], *result["across_architectures"], *result["slots"].values()]
    assert blocks
    for block in blocks:
        assert "mnist/kan/constant-rule" not in block["pairings"]
        sim = np.array(block["similarity"], dtype=float)
        assert np.all(np.isfinite(sim))
        np.testing.assert_allclose(sim, sim.T, atol=1e-4)
        np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-4)
    assert any("constant-rule" in note and "constant RDM" in note for note in result["notes"])


def test_a_constant_rdm_is_recorded_as_null_with_the_reason():
    network, data = _mlp_and_data()
    with torch.no_grad():
        network.layers[0].weight.zero_()  # every probe gives the hidden activity relu(bias): one pattern
    value, reasons = rsa.measure(network, data, num_classes=3, seed=0)
    hidden = value["layers"][0]
    assert hidden["rdm"] is None and ("degenerate RDM" in hidden["reason"] or "undefined" in hidden["reason"])
    assert reasons[f"representations.{hidden['name']}"] == hidden["reason"]
