"""Plugin discovery: real and faked entry points, broken plugins, duplicates, disabling."""

from __future__ import annotations

import sys
import textwrap
import types
from importlib import metadata
from pathlib import Path

import pytest
import tomllib

from biobench.plugin_api import registry as reg
from biobench.plugin_api.hookspecs import hookimpl

REPO = Path(__file__).resolve().parents[1]


def _entry_point_table() -> dict[str, str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["biobench"]


def test_builtin_plugins_are_discovered_through_installed_entry_points():
    registry = reg.load_registry(disable=[], only=[])
    assert "mlp" in registry.architectures
    assert "backprop" in registry.rules
    assert "mnist" in registry.tasks
    source = registry.rules["backprop"].source
    assert (source.distribution, source.entry_point) == ("biobench", "backprop")
    assert registry.errors == []


def test_every_plugin_module_is_registered_as_an_entry_point():
    table = _entry_point_table()
    registered = {value.split(":")[0] for value in table.values()}
    package = REPO / "plugins" / "biobench_plugins"
    modules = {
        "biobench_plugins." + ".".join(p.relative_to(package).with_suffix("").parts)
        for p in package.rglob("*.py")
        if p.name != "__init__.py"
    }
    assert modules - registered == set(), "plugin modules missing from [project.entry-points.biobench]"
    assert registered - modules == set(), "entry points naming modules that do not exist"


def test_every_hook_is_documented_and_exercised_by_a_test():
    from biobench.plugin_api import hookspecs

    hooks = [name for name in dir(hookspecs) if name.startswith("biobench_")]
    assert len(hooks) >= 4
    test_text = "\n".join(p.read_text() for p in (REPO / "tests").glob("test_*.py"))
    for name in hooks:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
        assert f"def {name}(" in test_text, f"hook {name} has no implementation in any test"


class _Dist:
    def __init__(self, name: str, version: str = "9.9") -> None:
        self.name, self.version = name, version


def _fake_entry_points(monkeypatch, extra) -> None:
    """Add entry points to the real ones: {name: (module, distribution)} or [(name, module, distribution)]."""
    real = metadata.entry_points
    items = [(n, m, d) for n, (m, d) in extra.items()] if isinstance(extra, dict) else list(extra)

    def entry_points(**kwargs):
        eps = list(real(**kwargs))
        if kwargs.get("group") == reg.GROUP:
            for name, module, dist in items:
                ep = metadata.EntryPoint(name=name, value=module, group=reg.GROUP)
                eps.append(ep._for(_Dist(dist)))  # what importlib.metadata does for real dists
        return eps

    monkeypatch.setattr(metadata, "entry_points", entry_points)


def _module(monkeypatch, name: str, source: str) -> None:
    module = types.ModuleType(name)
    exec(textwrap.dedent(source), module.__dict__)
    monkeypatch.setitem(sys.modules, name, module)


GOOD_RULE = """
    from biobench import LearningRule, hookimpl

    class Echo(LearningRule):
        name = "echo"
        description = "A test rule"
        weight_transport = False
        global_error = False

        def compute_update(self, x, y, loss_fn):
            raise NotImplementedError

    @hookimpl
    def biobench_register_rules():
        return [Echo]
"""


def test_faked_entry_point_is_discovered_with_its_distribution(monkeypatch):
    _module(monkeypatch, "fake_echo_plugin", GOOD_RULE)
    _fake_entry_points(monkeypatch, {"echo": ("fake_echo_plugin", "fake-echo-dist")})
    registry = reg.load_registry(disable=[], only=[])
    assert registry.rules["echo"].source.distribution == "fake-echo-dist"
    assert registry.rules["echo"].source.entry_point == "echo"
    assert "backprop" in registry.rules


def test_broken_plugins_are_reported_and_the_others_still_load(monkeypatch):
    _module(monkeypatch, "fake_echo_plugin", GOOD_RULE)
    _module(
        monkeypatch,
        "fake_garbage_plugin",
        """
        from biobench import hookimpl

        @hookimpl
        def biobench_register_architectures():
            return ["not a class"]
        """,
    )
    _module(
        monkeypatch,
        "fake_raising_plugin",
        """
        from biobench import hookimpl

        @hookimpl
        def biobench_register_tasks():
            raise RuntimeError("boom in hook")
        """,
    )
    _module(
        monkeypatch,
        "fake_typo_plugin",
        """
        from biobench import hookimpl

        @hookimpl
        def biobench_register_rulez():
            return []
        """,
    )
    _fake_entry_points(
        monkeypatch,
        {
            "missing": ("fake_module_that_does_not_exist", "dist-missing"),
            "garbage": ("fake_garbage_plugin", "dist-garbage"),
            "raising": ("fake_raising_plugin", "dist-raising"),
            "typo": ("fake_typo_plugin", "dist-typo"),
            "echo": ("fake_echo_plugin", "dist-echo"),
        },
    )
    registry = reg.load_registry(disable=[], only=[])
    errors = {e.entry_point: e for e in registry.errors}
    assert errors["missing"].distribution == "dist-missing"
    assert "ModuleNotFoundError" in errors["missing"].error
    assert "not a subclass of Architecture" in errors["garbage"].error
    assert "boom in hook" in errors["raising"].error
    assert "biobench_register_rulez" in errors["typo"].error
    assert "echo" in registry.rules and "mlp" in registry.architectures


def test_duplicate_name_is_rejected_naming_both_sides(monkeypatch):
    _module(
        monkeypatch,
        "fake_dup_plugin",
        """
        from biobench import hookimpl
        from biobench_plugins.rules.backprop import Backprop

        class Impostor(Backprop):
            description = "same name as a built-in"

        @hookimpl
        def biobench_register_rules():
            return [Impostor]
        """,
    )
    _fake_entry_points(monkeypatch, {"aaa-dup": ("fake_dup_plugin", "dist-dup")})
    registry = reg.load_registry(disable=[], only=[])
    assert registry.rules["backprop"].source.distribution == "biobench"
    (error,) = [e for e in registry.errors if e.entry_point == "aaa-dup"]
    assert error.distribution == "dist-dup"
    assert "rule name 'backprop' belongs to the built-in plugin 'backprop' (biobench" in error.error
    assert "the built-in rule is active" in error.error and "'aaa-dup' (dist-dup 9.9)" in error.error


def _rule_module(monkeypatch, module: str, cls: str, description: str) -> None:
    _module(monkeypatch, module, f"""
        from biobench import LearningRule, hookimpl

        class {cls}(LearningRule):
            name = "contested"
            description = "{description}"
            weight_transport = False
            global_error = False

            def compute_update(self, x, y, loss_fn):
                raise NotImplementedError

        @hookimpl
        def biobench_register_rules():
            return [{cls}]
        """)


def test_two_third_party_plugins_claiming_a_name_are_both_refused_until_one_is_disabled(monkeypatch):
    _rule_module(monkeypatch, "fake_genuine", "Genuine", "the genuine one")
    _rule_module(monkeypatch, "fake_impostor", "Impostor", "the impostor")
    _fake_entry_points(monkeypatch, {"genuine": ("fake_genuine", "dist-a"), "impostor": ("fake_impostor", "dist-b")})
    registry = reg.load_registry(disable=[], only=[])
    assert "contested" not in registry.rules
    errors = [e for e in registry.errors if "contested" in e.error]
    assert {e.distribution for e in errors} == {"dist-a", "dist-b"}
    assert all("'genuine' (dist-a 9.9) and 'impostor' (dist-b 9.9)" in e.error for e in errors)
    with pytest.raises(reg.UnknownNameError, match="claimed by plugins 'genuine'"):
        registry.get("rule", "contested")
    chosen = reg.load_registry(disable=["impostor"], only=[])
    assert chosen.rules["contested"].cls.description == "the genuine one"
    assert not [e for e in chosen.errors if "contested" in e.error]


def test_one_entry_point_name_from_two_distributions_loads_neither(monkeypatch):
    _rule_module(monkeypatch, "fake_first", "First", "first")
    _rule_module(monkeypatch, "fake_second", "Second", "second")
    _fake_entry_points(monkeypatch, [("same", "fake_first", "dist-a"), ("same", "fake_second", "dist-b")])
    registry = reg.load_registry(disable=[], only=[])
    assert "contested" not in registry.rules and "same" not in registry.sources
    assert len([e for e in registry.errors if "entry point name 'same' is claimed" in e.error]) == 2
    chosen = reg.load_registry(disable=["dist-b:same"], only=[])
    assert chosen.rules["contested"].source.distribution == "dist-a"
    assert "dist-b:same" in chosen.disabled


def test_a_plugin_declares_a_capability_and_an_unknown_one_is_an_error_naming_the_plugin(monkeypatch):
    _module(monkeypatch, "fake_capability", """
        from biobench import hookimpl

        @hookimpl
        def biobench_register_capabilities():
            return {"dendrites": "layers with dendritic compartments"}
        """)
    _module(monkeypatch, "fake_needs", """
        from biobench import LearningRule, hookimpl

        class NeedsDendrites(LearningRule):
            name = "needs-dendrites"
            description = "needs a declared capability"
            requires = frozenset({"dendrites"})
            weight_transport = False
            global_error = False

            def compute_update(self, x, y, loss_fn):
                raise NotImplementedError

        class Typo(NeedsDendrites):
            name = "typo-rule"
            description = "names a capability nobody declares"
            requires = frozenset({"dendrits"})

        @hookimpl
        def biobench_register_rules():
            return [NeedsDendrites, Typo]
        """)
    _fake_entry_points(monkeypatch, {"dendrites": ("fake_capability", "dist-c"), "needs": ("fake_needs", "dist-n")})
    registry = reg.load_registry(disable=[], only=[])
    assert registry.capabilities["dendrites"].declared_by == "'dendrites' (dist-c 9.9)"
    assert "needs-dendrites" in registry.rules and "typo-rule" not in registry.rules
    (error,) = [e for e in registry.errors if e.entry_point == "needs"]
    assert error.distribution == "dist-n" and "['dendrits']" in error.error and "typo-rule" in error.error
    # without the declaring plugin, the rule that requires it is refused too
    without = reg.load_registry(disable=["dendrites"], only=[])
    assert "needs-dendrites" not in without.rules


def test_a_capability_declared_twice_is_an_error(monkeypatch):
    _module(monkeypatch, "fake_redeclare", """
        from biobench import hookimpl

        @hookimpl
        def biobench_register_capabilities():
            return {"dense": "something else"}
        """)
    _fake_entry_points(monkeypatch, {"redeclare": ("fake_redeclare", "dist-r")})
    registry = reg.load_registry(disable=[], only=[])
    (error,) = [e for e in registry.errors if e.entry_point == "redeclare"]
    assert "'dense' is already declared by 'biobench'" in error.error
    assert registry.capabilities["dense"].declared_by == "biobench"


def test_disable_and_allow_lists(monkeypatch):
    monkeypatch.setenv(reg.DISABLE_ENV, "mlp")
    registry = reg.load_registry()
    assert "mlp" not in registry.architectures and "mlp" in registry.disabled
    assert "backprop" in registry.rules
    monkeypatch.delenv(reg.DISABLE_ENV)
    monkeypatch.setenv(reg.ONLY_ENV, "mlp,mnist,compatibility,bounded_rate,layer_chain")
    registry = reg.load_registry()
    assert set(registry.architectures) == {"mlp", "mlp-sigmoid"} and registry.rules == {}


def test_unknown_name_lists_known_names_and_suggests():
    registry = reg.load_registry(disable=[], only=[])
    with pytest.raises(reg.UnknownNameError) as info:
        registry.get("rule", "backpro")
    assert info.value.suggestion == "backprop"
    assert "Did you mean 'backprop'?" in str(info.value)
    assert "backprop" in info.value.known


def test_pairing_unsupported_hook_firstresult():
    from biobench_plugins.architectures.mlp import MLP
    from biobench_plugins.rules.backprop import Backprop
    from biobench_plugins.tasks.mnist import Mnist

    class Veto:
        @hookimpl(tryfirst=True)
        def biobench_pairing_unsupported(self, architecture, rule, task, capabilities):
            return "vetoed for the test" if rule.name == "backprop" else None

    source = reg.PluginSource("veto", "tests", "tests", "0")
    registry = reg.load_registry(disable=[], only=[], extra_plugins=[(source, Veto())])
    assert registry.unsupported_reason(MLP(), Backprop, Mnist()) == "vetoed for the test"

    class NeedsTime(Backprop):
        name = "needs-time"
        requires = frozenset({"time"})

    plain = reg.load_registry(disable=[], only=[])
    reason = plain.unsupported_reason(MLP(), NeedsTime, Mnist())
    assert reason is not None and "time" in reason and "mlp" in reason
    assert plain.unsupported_reason(MLP(), Backprop, Mnist()) is None


def test_get_plugin_manager_is_fresh_each_call():
    a, b = reg.get_plugin_manager(), reg.get_plugin_manager()
    assert a is not b and a.get_plugins() == set()
