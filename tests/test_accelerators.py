"""Accelerators: option resolution, records, Ray requests, the accelerator code paths, and the device audit.

No GPU is available to these tests. The accelerator branches run on the CPU under
:func:`biobench.plugin_api.accelerators.simulated_accelerator`, and the device audit
(:mod:`device_audit`) checks every built-in pairing for what would break (tensors on two
devices, generators on the wrong device) or stall (reads of device values) on a GPU.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from device_audit import DeviceAudit, audit_pairing
from helpers import run_context, without_timings

from biobench import LearningRule, derived_generator, hookimpl
from biobench.cli import build_parser, main, plan_from_args
from biobench.execution import ray_cluster
from biobench.execution.workers import ExecutorError
from biobench.metrics import catalog, harness
from biobench.metrics.base import MeasurementSettings
from biobench.plugin_api.accelerators import on_accelerator, simulated_accelerator
from biobench.plugin_api.registry import BUILTIN_DISTRIBUTION, PluginSource, load_registry
from biobench.results import records
from biobench.training import devices, runner
from biobench.training.batches import TensorBatches

REPO = Path(__file__).resolve().parents[1]
NO_CUDA = not torch.cuda.is_available()


# -- resolving --accelerator / --devices ------------------------------------------------------------


def test_auto_is_the_cpu_without_cuda_and_the_first_gpu_with_it():
    assert devices.resolve_device("auto", gpu_available=False) == torch.device("cpu")
    assert devices.resolve_device("auto", gpu_available=True) == torch.device("cuda", 0)
    assert devices.resolve_device("cpu", gpu_available=True) == torch.device("cpu")
    assert devices.resolve_device("gpu", gpu_available=True) == torch.device("cuda", 0)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_auto_asks_torch_and_gpu_without_cuda_names_the_fix():
    assert devices.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(devices.AcceleratorError) as exc:
        devices.resolve_device("gpu")
    message = str(exc.value)
    assert "torch.cuda.is_available() is False" in message
    assert "CUDA build of torch" in message and "--accelerator auto or cpu" in message


def test_unknown_accelerators_and_several_devices_are_refused():
    with pytest.raises(devices.AcceleratorError, match=r"unknown accelerator 'tpu'; known: auto, cpu, gpu"):
        devices.check_request("tpu", 1)
    with pytest.raises(devices.AcceleratorError, match=r"--devices 2: a run trains on one device.*--jobs 2"):
        devices.check_request("auto", 2)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(devices.AcceleratorError, match="whole number >= 1"):
            devices.check_request("auto", bad)
    devices.check_request("gpu", 1)  # a valid request (whether a GPU exists is checked when resolving)


def test_the_cpu_is_described_for_the_record():
    described = devices.describe(torch.device("cpu"))
    assert described["device"] == "cpu" and described["precision"] == "float32"
    assert described["device_name"] and described["device_name"] == devices.cpu_name()
    assert devices.lightning_accelerator(torch.device("cpu")) == ("cpu", 1)
    assert devices.lightning_accelerator(torch.device("cuda", 0)) == ("gpu", [0])


@pytest.mark.parametrize("command", ["run", "tune", "reproduce"])
def test_every_running_command_has_the_options_and_says_one_device(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    text = sub.format_help()
    assert "--accelerator {auto,cpu,gpu}" in text and "--devices N" in text
    assert "only 1 is supported" in " ".join(text.split())


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("command", [["run", "--arch", "mlp", "--rule", "backprop"], ["tune", "--all"], ["reproduce", "--all"]])
def test_gpu_without_cuda_stops_before_anything_runs(tmp_path, capsys, command):
    out = tmp_path / "out"
    code = main([*command, "--accelerator", "gpu", "--out", str(out)])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "error: --accelerator gpu: torch sees no CUDA GPU here" in err and "--accelerator auto or cpu" in err
    assert not out.exists()


def test_several_devices_stop_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--arch", "mlp", "--rule", "backprop", "--devices", "2", "--out", str(out)])
    assert code == 2
    assert "a run trains on one device" in capsys.readouterr().err
    assert not out.exists()


def test_the_accelerator_travels_in_the_run_options_but_not_in_the_identity(registry):
    parser = build_parser()
    plain_args = parser.parse_args(["run", "--arch", "mlp", "--rule", "backprop", "--profile", "smoke"])
    cpu_args = parser.parse_args(["run", "--arch", "mlp", "--rule", "backprop", "--profile", "smoke",
                                  "--accelerator", "cpu", "--devices", "1"])
    (plain,) = plan_from_args(plain_args, registry)
    (cpu,) = plan_from_args(cpu_args, registry)
    assert plain.run_options == ()  # nothing said, nothing stored: auto
    assert dict(cpu.run_options) == {"accelerator": "cpu", "devices": 1}
    a, b = runner.resolve(plain, registry), runner.resolve(cpu, registry)
    assert (a.accelerator, b.accelerator) == ("auto", "cpu")
    assert a.config == b.config and a.run_id == b.run_id
    assert records.config_hash(a.config) == records.config_hash(b.config)
    assert "accelerator" not in json.dumps(b.config)
    assert cpu.overrides() == {"run": {"accelerator": "cpu", "devices": 1}}


def test_a_bad_accelerator_in_the_run_options_is_refused_when_resolving(registry):
    spec = runner.RunSpec("mnist", "mlp", "backprop", 0, "smoke", run_options=(("accelerator", "npu"),))
    with pytest.raises(devices.AcceleratorError, match="unknown accelerator 'npu'"):
        runner.resolve(spec, registry)
    spec = runner.RunSpec("mnist", "mlp", "backprop", 0, "smoke", run_options=(("devices", 4),))
    with pytest.raises(devices.AcceleratorError, match="one device"):
        runner.resolve(spec, registry)


# -- records ------------------------------------------------------------------------------------------

TINY = (("test_subset", 200), ("train_subset", 400), ("val_subset", 100))


def test_records_say_where_the_run_trained(tmp_path, data_dir):
    ctx = run_context(tmp_path, data_dir)
    spec = runner.RunSpec("mnist", "mlp", "backprop", 0, "smoke", run_options=(*TINY, ("accelerator", "cpu")))
    record = runner.execute(spec, ctx)
    assert record["status"] == "ok"
    stored = records.read_record(ctx.record_path(spec))
    env = stored["environment"]
    assert env["device"] == "cpu" and env["precision"] == "float32" and env["device_name"] == devices.cpu_name()
    assert records.device_of(stored) == "cpu"
    assert stored["overrides"]["run"]["accelerator"] == "cpu"
    bad = json.loads(json.dumps(stored))
    bad["environment"]["precision"] = "float16"
    with pytest.raises(records.RecordError, match="environment/precision"):
        records.validate_record(bad)
    bad["environment"]["precision"], bad["environment"]["device"] = "float32", "GPU 0"
    with pytest.raises(records.RecordError, match="environment/device"):
        records.validate_record(bad)


def test_records_without_a_device_ran_on_the_cpu():
    committed = sorted((REPO / "leaderboard" / "results").glob("*.json"))
    assert committed, "a committed leaderboard record is the base of the old records this test makes"
    record = json.loads(committed[0].read_text())
    for key in ("device", "device_name", "precision"):  # written before these keys existed
        record["environment"].pop(key, None)
    record = records.validate_record(record)
    assert records.device_of(record) == "cpu"
    old = {**record, "schema_version": 1}
    migrated = records.validate_record(records.migrate(old))
    assert migrated["migrated_from"] == 1 and records.device_of(migrated) == "cpu"


def test_the_leaderboard_names_devices_only_when_not_only_the_cpu():
    from biobench.results.leaderboard import provenance

    base = {"profile": "ci", "seed": 0, "status": "ok", "environment": {}}
    assert provenance([base]) == "1 records (profile ci; seeds 0)"
    gpu = {**base, "seed": 1, "environment": {"device": "cuda:0"}}
    assert provenance([base, gpu]) == "2 records (profile ci; seeds 0, 1; devices cpu, cuda:0)"


# -- Ray ---------------------------------------------------------------------------------------------


def test_ray_asks_for_a_gpu_for_gpu_runs_and_checks_the_cluster_has_one(registry):
    auto = runner.RunSpec("mnist", "mlp", "backprop", 0, "smoke")
    gpu = runner.RunSpec("mnist", "mlp", "backprop", 0, "smoke", run_options=(("accelerator", "gpu"),))
    assert ray_cluster.resource_request(auto, registry) == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert ray_cluster.resource_request(gpu, registry) == {"num_cpus": 1.0, "num_gpus": 1.0}
    requests = {0: ray_cluster.resource_request(gpu, registry)}
    ray_cluster.check_gpus(requests, {"CPU": 8.0, "GPU": 2.0})
    with pytest.raises(ExecutorError, match=r"asks for 1 GPU\(s\).*the Ray cluster has 0"):
        ray_cluster.check_gpus(requests, {"CPU": 8.0})
    ray_cluster.check_gpus({0: ray_cluster.resource_request(auto, registry)}, {"CPU": 8.0})


@pytest.mark.parametrize("given", [True, False])
def test_a_ray_task_uses_the_gpu_ray_gave_it(monkeypatch, registry, given):
    from biobench.execution.workers import WorkerSettings, spec_to_dict

    seen = {}

    def fake_execute(spec, ctx):
        seen["gpu_available"] = ctx.gpu_available
        return {"run_id": "x"}

    monkeypatch.setattr(ray_cluster, "task_has_gpu", lambda: given)
    monkeypatch.setattr(runner, "execute", fake_execute)
    ctx = runner.RunContext(registry=registry, out_dir=Path("unused"), measurement_factories=[])
    settings = WorkerSettings.from_context(ctx, threads=1)
    monkeypatch.setitem(ray_cluster._TASK_REGISTRIES, settings.to_json(), registry)
    ray_cluster.ray_pairing_task(spec_to_dict(runner.RunSpec("mnist", "mlp", "backprop", 0, "smoke")), settings.to_json())
    assert seen["gpu_available"] is given
    # auto in a task that got a GPU trains on it; one that got none stays on the CPU
    assert devices.resolve_device("auto", seen["gpu_available"]).type == ("cuda" if given else "cpu")


# -- the accelerator code paths, run on the CPU ----------------------------------------------------


def test_simulated_accelerator_switches_the_branches_and_is_undone():
    cpu = torch.device("cpu")
    assert not on_accelerator(cpu) and on_accelerator(torch.device("cuda", 0))
    with simulated_accelerator():
        assert on_accelerator(cpu) and devices.defer_syncs(cpu)
    assert not on_accelerator(cpu) and not devices.defer_syncs(cpu)


def test_deferred_loss_checks_give_the_same_run(tmp_path, data_dir):
    """On accelerators the step reads its losses once per block: the epoch statistics are the same numbers."""
    # 400 examples in batches of 30: 14 mini-batches, a full block and a partial one, over 2 epochs
    spec = runner.RunSpec("mnist", "mlp", "feedback_alignment", 2, "smoke", epochs=2, batch_size=30,
                          run_options=TINY)
    ctx = run_context(tmp_path / "per-batch", data_dir)
    direct = runner.execute(spec, ctx)
    with simulated_accelerator():
        deferred = runner.execute(spec, run_context(tmp_path / "per-block", data_dir))
    assert direct["status"] == deferred["status"] == "ok"
    assert without_timings(direct["metrics"]) == without_timings(deferred["metrics"])
    assert len(direct["metrics"]["history"]["train_loss"]) == 2


class _NanAtThirdStep(LearningRule):
    name = "nan-at-third-step"
    description = "Backprop whose third update has a NaN loss"
    weight_transport = True
    global_error = True
    calls = 0

    def compute_update(self, x, y, loss_fn):
        type(self).calls += 1
        with self.network.plain():
            logits = self.network(x)
            loss = loss_fn(logits, y)
            loss.backward()
        if type(self).calls >= 3:
            loss = loss * float("nan")
        return loss.detach(), logits.detach()


class _TestRules:
    @hookimpl
    def biobench_register_rules(self):
        return [_NanAtThirdStep]


EXTRA = [(PluginSource("accelerator-test-rules", "tests", "tests", "0"), _TestRules())]


def test_deferred_loss_checks_report_the_step_that_diverged(tmp_path, data_dir):
    spec = runner.RunSpec("mnist", "mlp", "nan-at-third-step", 0, "smoke", batch_size=20, run_options=TINY)
    _NanAtThirdStep.calls = 0
    direct = runner.execute(spec, run_context(tmp_path / "a", data_dir, EXTRA))
    _NanAtThirdStep.calls = 0
    with simulated_accelerator():
        deferred = runner.execute(spec, run_context(tmp_path / "b", data_dir, EXTRA))
    assert direct["status"] == deferred["status"] == "diverged"
    assert direct["reason"] == deferred["reason"] == "training loss became non-finite at epoch 0, step 2"


def test_batches_are_drawn_where_the_data_lives_with_the_same_shuffles():
    x, y = torch.arange(20.0).reshape(10, 2), torch.arange(10)
    first = [yb.tolist() for _, yb in TensorBatches(x, y, 4, shuffle=True, seed=5)]
    again = [yb.tolist() for _, yb in TensorBatches(x.clone(), y.clone(), 4, shuffle=True, seed=5)]
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(5)).tolist()
    assert first == again == [expected[0:4], expected[4:8], expected[8:10]]


def test_derived_generators_draw_the_same_seed_on_every_device():
    plain = derived_generator(torch.Generator().manual_seed(11))
    on_cpu = derived_generator(torch.Generator().manual_seed(11), torch.device("cpu"))
    assert on_cpu.device == torch.device("cpu") and plain.initial_seed() == on_cpu.initial_seed()
    assert torch.equal(torch.randn(5, generator=plain), torch.randn(5, generator=on_cpu))


def test_network_device_is_the_parameters_device(registry):
    arch = registry.get("architecture", "mlp").cls(hidden=[3])
    network = arch.build(4, 2, torch.Generator().manual_seed(0))
    assert network.device == torch.device("cpu")


def test_the_spiking_encoding_on_an_accelerator_is_a_deterministic_rate_code():
    from biobench import hash32
    from biobench_plugins.architectures.snn import device_uniform, rate_encode

    # lowbias32 on a few words, computed by hand with Python integers (mod 2**32)
    def reference(x):
        x ^= x >> 16
        x = (x * 0x7FEB352D) & 0xFFFFFFFF
        x ^= x >> 15
        x = (x * 0x846CA68B) & 0xFFFFFFFF
        return x ^ (x >> 16)

    words = [0, 1, 2, 12345, 2**31, 2**32 - 1]
    assert hash32(torch.tensor(words)).tolist() == [reference(w) for w in words]
    p = torch.linspace(0, 1, 101).repeat(40, 1)  # 40 rows of probabilities 0, 0.01, ..., 1
    u = device_uniform(p, 25, seed=3)
    assert u.shape == (25, 40, 101) and 0.0 <= float(u.min()) and float(u.max()) < 1.0
    assert torch.equal(u, device_uniform(p.clone(), 25, seed=3))  # same batch, same numbers
    assert not torch.equal(u, device_uniform(p, 25, seed=4))
    shifted = p.clone()
    shifted[0, 1] += 1e-6
    assert float((u == device_uniform(shifted, 25, seed=3)).float().mean()) < 1e-3  # any change: new numbers
    with simulated_accelerator():
        spikes = rate_encode(p, 25, seed=3)
    rates = spikes.mean(dim=(0, 1))  # 1,000 draws per probability
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert float(rates[0]) == 0.0 and float(rates[-1]) == 1.0
    assert float((rates - p[0]).abs().max()) < 5 * math.sqrt(0.25 / 1000)  # within 5 standard errors
    x = p[:2].clone().requires_grad_(True)
    with simulated_accelerator():
        rate_encode(x, 3, seed=1).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 3.0))  # straight through, once per step


def test_the_competitive_network_on_an_accelerator_repeats_only_the_quiet_images():
    from biobench_plugins.architectures.competitive_snn import CompetitiveSpikingNetwork
    from biobench_plugins.rules.stdp_competitive import diehl_cook_stdp

    arch = CompetitiveSpikingNetwork(neurons=3, presentation_ms=100.0, min_spikes=5, max_presentations=3)
    network = arch.build(6, 2, torch.Generator().manual_seed(0))
    module = network.module
    with torch.no_grad():
        network.layers[0].weight.fill_(1.5)
    x = torch.linspace(0, 1, 8)[:, None].repeat(1, 6)  # row 0 silent, row 7 white
    with simulated_accelerator():
        counts, trains = module.respond(x, adapt=False, record=True)
        again, _ = module.respond(x.clone(), adapt=False, record=False)
        rounds = [module.present(x, module.max_rate_hz + r * module.rate_step_hz, False, True, r) for r in range(3)]
    assert torch.equal(counts, again)  # the same batch gets the same spikes
    # each image keeps the first presentation that reached min_spikes, else the last one
    chosen = []
    for image in range(8):
        reached = [r for r in range(3) if float(rounds[r][0][image].sum()) >= 5]
        chosen.append(reached[0] if reached else 2)
    assert len(set(chosen)) == 3  # the case exercises every round
    for image, r in enumerate(chosen):
        assert torch.equal(counts[image], rounds[r][0][image])
        for kept, drawn in zip(trains, rounds[r][1], strict=True):
            assert torch.equal(kept[:, image], drawn[:, image])
    pre, drive, post = trains
    assert set(pre.unique().tolist()) <= {0.0, 1.0} and float(pre[:, 0].sum()) == 0.0  # a black image never fires
    torch.testing.assert_close(drive, pre @ network.layers[0].weight.detach().t())
    assert torch.equal(post.sum(0), counts)
    # the STDP's dense sums on an accelerator are the CPU's sparse ones
    generator = torch.Generator().manual_seed(0)
    spikes_in = (torch.rand(30, 3, 4, generator=generator) < 0.2).float()
    spikes_out = (torch.rand(30, 3, 2, generator=generator) < 0.3).float()
    on_cpu = diehl_cook_stdp(spikes_in, spikes_out, 0.5, 1e-4, 1e-2, 20.0, 20.0, 40.0)
    with simulated_accelerator():
        dense = diehl_cook_stdp(spikes_in, spikes_out, 0.5, 1e-4, 1e-2, 20.0, 20.0, 40.0)
    assert float(on_cpu.abs().max()) > 0
    torch.testing.assert_close(dense, on_cpu)


def test_the_per_example_angle_on_an_accelerator_masks_the_examples_it_leaves_out():
    from biobench.metrics.alignment import mean_example_angle

    generator = torch.Generator().manual_seed(0)
    ours, theirs = torch.randn(32, 5, 3, generator=generator), torch.randn(32, 5, 3, generator=generator)
    ours[3] = 0.0  # left out: a zero signal
    theirs[7, 1, 2] = float("nan")  # left out: not finite
    theirs[9, 0, 0] = float("inf")
    on_cpu = mean_example_angle(ours, theirs)
    with simulated_accelerator():
        masked = mean_example_angle(ours, theirs)
        assert mean_example_angle(ours[3:4], theirs[3:4]) is None  # no example left
    assert on_cpu is not None and masked == pytest.approx(on_cpu, rel=1e-12)
    kept = [i for i in range(32) if i not in (3, 7, 9)]
    assert on_cpu == pytest.approx(mean_example_angle(ours[kept], theirs[kept]), rel=1e-12)


# -- the device audit -----------------------------------------------------------------------------


class _Undisciplined(LearningRule):
    """Backprop plus three mistakes an accelerator would punish."""

    name = "undisciplined"
    description = "Test rule that ignores devices"
    weight_transport = True
    global_error = True

    def bind(self, network, generator):
        super().bind(network, generator)
        self.noise = torch.Generator().manual_seed(1)  # a CPU generator for noise drawn on the device
        self.scale = torch.ones(network.layers[0].out_features)  # a plain attribute: never moved

    def compute_update(self, x, y, loss_fn):
        with self.network.plain():
            logits = self.network(x)
            loss = loss_fn(logits, y)
            loss.backward()
        weight = self.network.layers[0].weight
        weight.grad.mul_(self.scale[:, None])  # host tensor with a device one
        weight.grad.add_(torch.randn(weight.shape, generator=self.noise, device=weight.device), alpha=1e-6)
        if loss.item() > 1e6:  # a read of a device value at every update
            raise RuntimeError("unreachable")
        return loss.detach(), logits.detach()


class _AuditRules:
    @hookimpl
    def biobench_register_rules(self):
        return [_Undisciplined]


AUDIT_EXTRA = [(PluginSource("audit-test-rules", "tests", "tests", "0"), _AuditRules())]
AUDIT_SETTINGS = MeasurementSettings(bias_examples=32, snr_examples=4, fgsm_examples=100, fgsm_chunk=50)


def _small_harness(run):
    return harness.harness_measurement(run, settings=AUDIT_SETTINGS)


#: Every measurement of the harness (the gradient probes made small).
AUDIT_FACTORIES = [
    _small_harness if f is harness.harness_measurement else f for f in catalog.measurement_factories()
]


def _audit(tmp_path, data_dir, architecture, rule, extra=(), architecture_options=(), rule_options=()):
    ctx = run_context(tmp_path / f"{architecture}-{rule}", data_dir, extra, force=True)
    spec = runner.RunSpec("mnist", architecture, rule, 0, "smoke", batch_size=20, run_options=TINY,
                          architecture_options=architecture_options, rule_options=rule_options)
    return audit_pairing(spec, ctx, AUDIT_FACTORIES)


def test_the_audit_finds_the_mistakes_a_gpu_would_punish(tmp_path, data_dir):
    result = _audit(tmp_path, data_dir, "mlp", "undisciplined", AUDIT_EXTRA)
    assert result.record["status"] == "ok"  # the CPU runs it happily
    problems = "\n".join(result.problems())
    assert "mismatch in rule: mul_ (device tensor(s) with host tensor(s) of shape (256, 1))" in problems
    assert "mismatch in rule: randn (a host (CPU) generator draws a device tensor)" in problems
    assert "sync in rule: item (device -> host read)" in problems
    assert "test_accelerators.py" in problems  # findings name the line


def test_the_audit_sees_inside_backward_passes():
    audit = DeviceAudit()
    matrices = {}

    class Feedback(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x @ matrices["forward"]

        @staticmethod
        def backward(ctx, g):
            return g @ matrices["feedback"]  # a host matrix meets the device gradient

    with audit:
        device = torch.device("cpu")  # the audit's stand-in for the accelerator
        matrices["forward"] = torch.ones(3, 3, device=device)
        matrices["feedback"] = torch.eye(3)  # created without device=: on the host
        x = torch.ones(2, 3).to(device).requires_grad_(True)
        Feedback.apply(x).sum().backward()
    assert [(e.kind, e.call) for e in audit.events] == [("mismatch", "matmul")]


def _pairings(registry):
    arch = sorted(n for n, e in registry.architectures.items() if e.source.distribution == BUILTIN_DISTRIBUTION)
    rules = sorted(n for n, e in registry.rules.items() if e.source.distribution == BUILTIN_DISTRIBUTION)
    return [(a, r) for a in arch for r in rules]


REGISTRY = load_registry(disable=[], only=[])
ALL_PAIRINGS = _pairings(REGISTRY)


def _supported(architecture, rule):
    arch_cls = REGISTRY.get("architecture", architecture).cls
    arch = arch_cls(**arch_cls.profile_overrides.get("smoke", {}))
    task = REGISTRY.get("task", "mnist").cls()
    return REGISTRY.unsupported_reason(arch, REGISTRY.get("rule", rule).cls, task) is None


def _fast_subset():
    """The cheap part of the audit: every built-in rule the ReLU MLP supports, and backprop on every architecture.

    The rest (rules that need spikes or B-splines on their architectures, and every other
    pairing) is audited in the slow tier.
    """
    chosen = [(a, r) for a, r in ALL_PAIRINGS if a == "mlp" and _supported(a, r)]
    return chosen + [(a, r) for a, r in ALL_PAIRINGS if r == "backprop" and a != "mlp"]


FAST_PAIRINGS = _fast_subset()


def _check_discipline(result):
    assert result.record["status"] in ("ok", "unsupported"), result.record["reason"]
    assert not [r for r in result.record["metric_reasons"].values() if "measurement raised" in r]
    assert result.problems() == []
    if result.record["status"] == "ok":
        assert result.step_calls >= 2 and result.counts["sync:step"] == 2 * result.step_calls


@pytest.mark.parametrize(("architecture", "rule"), FAST_PAIRINGS)
def test_every_builtin_rule_and_architecture_keeps_device_discipline(tmp_path, data_dir, architecture, rule):
    _check_discipline(_audit(tmp_path, data_dir, architecture, rule))


@pytest.mark.slow
@pytest.mark.parametrize(("architecture", "rule"), [p for p in ALL_PAIRINGS if p not in FAST_PAIRINGS])
def test_every_builtin_pairing_keeps_device_discipline(tmp_path, data_dir, architecture, rule):
    _check_discipline(_audit(tmp_path, data_dir, architecture, rule))


#: Options whose code paths the default configurations do not take.
OPTION_VARIANTS = [
    ("mlp", "sign_symmetry", (), (("magnitude", "batch_random"), ("feedback_init", "kaiming_normal"))),
    ("snn", "backprop", (("encoding", "current"), ("readout", "membrane_mean"), ("per_step_loss", "sum")), ()),
    ("snn", "feedback_alignment", (("readout", "membrane_last"), ("hidden", [32, 16])), ()),
    ("kan", "backprop", (("first_layer_grid", "input_range"), ("init", "gaussian")), ()),
    ("mlp", "weight_mirror", (), (("mirror_noise", "uniform"), ("mirror_response", "sigmoid"))),
    ("ff-mlp", "forward_forward", (), (("negatives", "uniform"),)),
    ("hopfield", "equilibrium_propagation", (), (("estimator", "random_sign"),)),
    ("mlp", "difference_target_propagation", (), (("feedback_activation", "linear"),)),
]


@pytest.mark.parametrize(("architecture", "rule", "architecture_options", "rule_options"), OPTION_VARIANTS)
def test_option_variants_keep_device_discipline(tmp_path, data_dir, architecture, rule, architecture_options,
                                                rule_options):
    result = _audit(tmp_path, data_dir, architecture, rule, (), architecture_options, rule_options)
    assert result.record["status"] == "ok", result.record["reason"]
    _check_discipline(result)
