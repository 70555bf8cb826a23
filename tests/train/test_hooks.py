from __future__ import annotations

import sys
import textwrap
import warnings

import pytest

from gniazdo.errors import UserError
from gniazdo.train.hooks import EVENTS, Hooks, ShellHookRunner, hook_env, load_python_hooks, run_shell_hooks

TRAINER = object()


def test_callbacks_fire_in_order_with_info():
    calls = []
    hooks = Hooks()
    hooks.add("on_checkpoint", lambda t, **info: calls.append(("a", t, info)))
    hooks.add("on_checkpoint", lambda t, **info: calls.append(("b", t, info)))
    hooks.add("on_eval", lambda t, **info: calls.append(("eval", t, info)))
    hooks.fire("on_checkpoint", TRAINER, step=5, path="/x")
    assert calls == [("a", TRAINER, {"step": 5, "path": "/x"}), ("b", TRAINER, {"step": 5, "path": "/x"})]
    hooks.fire("on_train_end", TRAINER)  # no callbacks: nothing happens
    assert len(calls) == 2


def test_unknown_event_lists_valid_ones():
    hooks = Hooks()
    with pytest.raises(ValueError, match="on_chekpoint") as e:
        hooks.add("on_chekpoint", lambda t: None)
    for event in EVENTS:
        assert event in str(e.value)
    with pytest.raises(ValueError):
        hooks.fire("nope", TRAINER)


def test_failing_callback_warns_and_continues():
    warned, calls = [], []

    def bad(trainer, **info):
        raise RuntimeError("boom\nsecond line")

    hooks = Hooks(warn=warned.append)
    hooks.add("on_step_end", bad)
    hooks.add("on_step_end", lambda t, **info: calls.append(info["step"]))
    hooks.fire("on_step_end", TRAINER, step=3)
    assert calls == [3]
    assert len(warned) == 1 and "\n" not in warned[0]
    assert "bad" in warned[0] and "on_step_end" in warned[0] and "RuntimeError: boom second line" in warned[0]


def test_failing_callback_default_warn_uses_warnings():
    hooks = Hooks()
    hooks.add("on_eval", lambda t, **i: 1 / 0)
    with pytest.warns(RuntimeWarning, match="ZeroDivisionError"):
        hooks.fire("on_eval", TRAINER)


def test_strict_raises():
    hooks = Hooks(strict=True, warn=lambda m: pytest.fail("must not warn"))
    hooks.add("on_eval", lambda t, **i: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        hooks.fire("on_eval", TRAINER)


@pytest.fixture
def hook_module(tmp_path, monkeypatch):
    (tmp_path / "my_gniazdo_hooks.py").write_text(textwrap.dedent("""
        NOT_CALLABLE = 3
        def register(hooks, trainer):
            trainer.registered = True
            hooks.add("on_checkpoint", lambda t, **info: t.seen.append(info))
        class Group:
            @staticmethod
            def register(hooks, trainer):
                hooks.add("on_eval", lambda t, **info: t.seen.append("eval"))
    """))
    (tmp_path / "broken_gniazdo_hooks.py").write_text("import not_a_real_module_xyz\n")
    (tmp_path / "raising_gniazdo_hooks.py").write_text("raise RuntimeError('at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("my_gniazdo_hooks", "broken_gniazdo_hooks", "raising_gniazdo_hooks"):
        sys.modules.pop(name, None)


class FakeTrainer:
    def __init__(self):
        self.seen = []
        self.registered = False


def test_load_python_hooks(hook_module):
    trainer, hooks = FakeTrainer(), Hooks()
    load_python_hooks(["my_gniazdo_hooks:register", "my_gniazdo_hooks:Group.register"], hooks, trainer)
    assert trainer.registered
    hooks.fire("on_checkpoint", trainer, step=7)
    hooks.fire("on_eval", trainer)
    assert trainer.seen == [{"step": 7}, "eval"]


@pytest.mark.parametrize("spec, expected", [
    ("my_gniazdo_hooks.register", "expected 'module:function'"),
    ("my_gniazdo_hooks:", "expected 'module:function'"),
    (":register", "expected 'module:function'"),
    ("no_such_module_xyz:register", "module 'no_such_module_xyz' not found"),
    ("my_gniazdo_hooks:missing", "has no attribute 'missing'"),
    ("my_gniazdo_hooks:NOT_CALLABLE", "'NOT_CALLABLE' is not callable"),
    ("broken_gniazdo_hooks:register", "importing 'broken_gniazdo_hooks' failed"),
    ("raising_gniazdo_hooks:register", "RuntimeError: at import"),
])
def test_bad_python_hook_specs(hook_module, spec, expected):
    with pytest.raises(UserError) as e:
        load_python_hooks([spec], Hooks(), FakeTrainer())
    message = str(e.value)
    assert f"'{spec}'" in message and expected in message and "\n" not in message


def test_hook_env():
    env = hook_env("run1", "/runs/run1", 100, "on_checkpoint", checkpoint="/runs/run1/step-100",
                   epoch=2, config_path="/runs/run1/config.resolved.yaml")
    assert env == {"GNIAZDO_RUN_NAME": "run1", "GNIAZDO_RUN_DIR": "/runs/run1", "GNIAZDO_STEP": "100",
                   "GNIAZDO_EVENT": "on_checkpoint", "GNIAZDO_CHECKPOINT": "/runs/run1/step-100",
                   "GNIAZDO_EPOCH": "2", "GNIAZDO_CONFIG": "/runs/run1/config.resolved.yaml"}
    assert "GNIAZDO_CHECKPOINT" not in hook_env("r", "/d", 1, "on_train_end")


def _env_file(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_shell_hook_gets_full_env_and_log(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_VAR", "1")
    monkeypatch.setenv("GNIAZDO_CHECKPOINT", "/stale/from/parent")  # must not leak into an event without one
    log = tmp_path / "hooks.log"
    env = hook_env("run1", tmp_path, 42, "on_epoch_end", epoch=1, config_path=tmp_path / "c.yaml")
    procs = run_shell_hooks(['env > env.txt; echo "hello out"; echo "hello err" >&2'], env, tmp_path, log,
                            timeout=30, wait=True)
    assert [p.returncode for p in procs] == [0]
    seen = _env_file(tmp_path / "env.txt")  # cwd is the given folder
    assert seen["MY_VAR"] == "1" and seen["PATH"]
    assert seen["GNIAZDO_RUN_NAME"] == "run1" and seen["GNIAZDO_RUN_DIR"] == str(tmp_path)
    assert seen["GNIAZDO_STEP"] == "42" and seen["GNIAZDO_EVENT"] == "on_epoch_end"
    assert seen["GNIAZDO_EPOCH"] == "1" and seen["GNIAZDO_CONFIG"] == str(tmp_path / "c.yaml")
    assert "GNIAZDO_CHECKPOINT" not in seen
    lines = log.read_text().splitlines()
    assert lines[0].startswith("=== ") and "on_epoch_end step 42: env > env.txt" in lines[0]
    assert "hello out" in lines and "hello err" in lines


def test_wait_timeout_kills(tmp_path):
    procs = run_shell_hooks(["sleep 30"], hook_env("r", tmp_path, 1, "on_checkpoint"), tmp_path,
                            tmp_path / "hooks.log", timeout=0.2, wait=True)
    assert procs[0].returncode is not None and procs[0].returncode < 0


def test_runner_non_blocking_poll_reports_failures(tmp_path):
    warned = []
    runner = ShellHookRunner(tmp_path, tmp_path / "hooks.log", warn=warned.append)
    env = hook_env("r", tmp_path, 9, "on_checkpoint", checkpoint=tmp_path / "ck")
    procs = runner.run(["exit 3", "true", "sleep 0.3; echo $GNIAZDO_CHECKPOINT > ck.txt"], env)
    assert len(procs) == 3 and runner.running >= 1  # returned at once, the sleeper still runs
    assert runner.wait_all(timeout=20) == []
    assert runner.running == 0
    assert len(warned) == 1
    assert "exit 3" in warned[0] and "code 3" in warned[0] and "step 9" in warned[0] and "on_checkpoint" in warned[0]
    assert (tmp_path / "ck.txt").read_text().strip() == str(tmp_path / "ck")
    assert runner.poll() == []  # already reaped, reported once
    assert (tmp_path / "hooks.log").read_text().count("=== ") == 3


def test_runner_poll_returns_finished(tmp_path):
    warned = []
    runner = ShellHookRunner(tmp_path, tmp_path / "hooks.log", warn=warned.append)
    proc, = runner.run(["exit 2"], hook_env("r", tmp_path, 1, "on_train_end"))
    proc.wait(10)
    assert runner.poll() == [("exit 2", 2)]
    assert len(warned) == 1


def test_runner_timeout_and_wait_all_left_running(tmp_path):
    warned = []
    runner = ShellHookRunner(tmp_path, tmp_path / "hooks.log", warn=warned.append, timeout=0.2)
    runner.run(["sleep 30"], hook_env("r", tmp_path, 1, "on_checkpoint"))
    assert runner.wait_all(timeout=10) == []  # killed by its own timeout
    assert any("timed out" in w for w in warned)

    warned.clear()
    runner = ShellHookRunner(tmp_path, tmp_path / "hooks.log", warn=warned.append)
    proc, = runner.run(["sleep 30"], hook_env("r", tmp_path, 1, "on_train_end"))
    assert runner.wait_all(timeout=0.1, kill=True) == ["sleep 30"]
    assert "still running" in warned[-1] and "killed" in warned[-1]
    assert proc.poll() is not None and runner.running == 0


def test_runner_start_failure_is_warned(tmp_path):
    warned = []
    runner = ShellHookRunner(tmp_path / "missing", tmp_path / "hooks.log", warn=warned.append)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runner.run(["true"], hook_env("r", tmp_path, 1, "on_checkpoint")) == []
    assert len(warned) == 1 and "could not start" in warned[0]
