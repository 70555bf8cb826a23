"""Training hooks: Python callbacks by event, and shell commands run when a checkpoint/epoch/run ends.

Python hooks: ``hooks.python: ["pkg.mod:register"]`` imports ``pkg.mod`` and calls ``register(hooks, trainer)``,
which adds callbacks with ``hooks.add("on_checkpoint", fn)``; the trainer calls ``fn(trainer, **info)``.
A callback that raises is reported in one line and the run goes on (a buggy hook must not end a week-long
run) unless ``Hooks(strict=True)``.

Shell hooks: ``hooks.on_checkpoint`` etc. are command strings from the (trusted) user config, run through
bash in the run folder. Unlike ALLaMo's hook processes, they get the trainer's whole environment (PATH,
virtualenv, tokens for uploads) plus ``GNIAZDO_*`` variables describing the event (see :func:`hook_env`).
Output goes to ``<run>/hooks.log`` under a header line per command. They run in the background: the
trainer keeps them in a :class:`ShellHookRunner`, reaps them with ``poll()`` and waits at the end with
``wait_all()``. The commands of one event start together; chain with ``&&`` to order them.

Only rank 0 runs shell hooks (the trainer decides): a command uploading a checkpoint must run once, not
once per GPU. Python hooks run on every rank; a callback checks ``trainer.is_main`` itself when needed.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import shutil
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gniazdo.errors import UserError

EVENTS = ("on_step_end", "on_eval", "on_checkpoint", "on_epoch_end", "on_train_end")

#: variables set for shell hooks; inherited values of these are dropped so a stale one cannot leak in
HOOK_VARS = ("GNIAZDO_RUN_NAME", "GNIAZDO_RUN_DIR", "GNIAZDO_STEP", "GNIAZDO_EVENT", "GNIAZDO_CHECKPOINT",
             "GNIAZDO_EPOCH", "GNIAZDO_CONFIG")

Warn = Callable[[str], None]
_POSIX = os.name == "posix"


def _default_warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class Hooks:
    """Python callbacks by event name, called in the order they were added."""

    EVENTS = EVENTS

    def __init__(self, warn: Warn | None = None, strict: bool = False):
        self._warn = warn or _default_warn
        self.strict = strict
        self._callbacks: dict[str, list[Callable[..., Any]]] = {e: [] for e in EVENTS}

    def add(self, event: str, fn: Callable[..., Any]) -> None:
        if event not in self._callbacks:
            raise ValueError(f"unknown hook event '{event}' (valid: {', '.join(EVENTS)})")
        self._callbacks[event].append(fn)

    def callbacks(self, event: str) -> list[Callable[..., Any]]:
        return list(self._callbacks.get(event, []))

    def fire(self, event: str, trainer: Any, **info: Any) -> None:
        if event not in self._callbacks:
            raise ValueError(f"unknown hook event '{event}' (valid: {', '.join(EVENTS)})")
        for fn in self._callbacks[event]:
            try:
                fn(trainer, **info)
            except Exception as e:  # noqa: BLE001 - any hook bug is reported, not fatal
                if self.strict:
                    raise
                name = getattr(fn, "__qualname__", None) or repr(fn)
                self._warn(_one_line(f"hook {name} ({event}) failed: {type(e).__name__}: {e}"))


def load_python_hooks(specs: list[str], hooks: Hooks, trainer: Any) -> None:
    """Import each ``"module:function"`` and call ``function(hooks, trainer)`` so it registers callbacks.

    A bad spec is a one-line UserError naming it; an error raised by the register function itself
    propagates (it happens at start-up, where failing fast costs nothing).
    """
    for spec in specs:
        module_name, sep, attr = spec.partition(":")
        if not sep or not module_name.strip() or not attr.strip():
            raise UserError(f"python hook '{spec}': expected 'module:function'")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
                raise UserError(f"python hook '{spec}': module '{module_name}' not found") from None
            raise UserError(_one_line(f"python hook '{spec}': importing '{module_name}' failed: {e}")) from None
        except Exception as e:  # noqa: BLE001 - user code failing at import is a user error
            raise UserError(_one_line(f"python hook '{spec}': importing '{module_name}' failed: "
                                      f"{type(e).__name__}: {e}")) from None
        target: Any = module
        for part in attr.split("."):  # "Class.method" works too
            if not hasattr(target, part):
                raise UserError(f"python hook '{spec}': module '{module_name}' has no attribute '{attr}'")
            target = getattr(target, part)
        if not callable(target):
            raise UserError(f"python hook '{spec}': '{attr}' is not callable")
        target(hooks, trainer)


def hook_env(run_name: str, run_dir: str | Path, step: int, event: str, checkpoint: str | Path | None = None,
             epoch: int | float | None = None, config_path: str | Path | None = None) -> dict[str, str]:
    """The GNIAZDO_* variables of one event; those without a value are left out (unset in the hook)."""
    env = {"GNIAZDO_RUN_NAME": str(run_name), "GNIAZDO_RUN_DIR": str(run_dir), "GNIAZDO_STEP": str(step),
           "GNIAZDO_EVENT": str(event)}
    for name, value in (("GNIAZDO_CHECKPOINT", checkpoint), ("GNIAZDO_EPOCH", epoch),
                        ("GNIAZDO_CONFIG", config_path)):
        if value is not None:
            env[name] = str(value)
    return env


def run_shell_hooks(commands: list[str], env_extra: dict[str, str], cwd: str | Path, log_path: str | Path,
                    timeout: float | None = None, wait: bool = False) -> list[subprocess.Popen]:
    """Start each command (bash -c) with os.environ + env_extra, output appended to log_path.

    Non-blocking unless ``wait``; with ``wait``, ``timeout`` bounds the whole call and a command still
    running then is killed with its children (returncode < 0). Without ``wait`` the caller enforces
    timeouts (ShellHookRunner does).
    """
    env = {k: v for k, v in os.environ.items() if k not in HOOK_VARS}
    env.update({k: str(v) for k, v in env_extra.items()})
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    bash = shutil.which("bash")  # users write bash-isms; plain sh where there is no bash
    procs = []
    for command in commands:
        stamp = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        header = (f"=== {stamp} {env_extra.get('GNIAZDO_EVENT', '?')} step {env_extra.get('GNIAZDO_STEP', '?')}"
                  f": {command}\n")
        with open(log_path, "ab") as log:  # the child keeps its own copy of the (O_APPEND) descriptor
            log.write(header.encode("utf-8"))
            log.flush()
            procs.append(subprocess.Popen(
                command, shell=True, executable=bash, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
                start_new_session=_POSIX))  # own process group: a timeout kills the command's children too
    if wait:
        end = None if timeout is None else time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(None if end is None else max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill(proc)
    return procs


def _kill(proc: subprocess.Popen) -> None:
    try:
        if _POSIX:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


@dataclass
class _Job:
    proc: subprocess.Popen
    command: str
    event: str
    step: str
    deadline: float | None


class ShellHookRunner:
    """Runs shell hooks in the background, keeps their handles, reports failures through ``warn``."""

    def __init__(self, cwd: str | Path, log_path: str | Path, warn: Warn | None = None,
                 timeout: float | None = None):
        self.cwd, self.log_path = Path(cwd), Path(log_path)
        self._warn = warn or _default_warn
        self.timeout = timeout  # seconds per command; None = no limit
        self._jobs: list[_Job] = []

    @property
    def running(self) -> int:
        return len(self._jobs)

    def run(self, commands: list[str], env_extra: dict[str, str]) -> list[subprocess.Popen]:
        self.poll()  # reap earlier ones first, so failures are reported near when they happened
        event, step = env_extra.get("GNIAZDO_EVENT", "?"), env_extra.get("GNIAZDO_STEP", "?")
        procs = []
        for command in commands:
            try:
                procs += run_shell_hooks([command], env_extra, self.cwd, self.log_path)
            except OSError as e:  # e.g. the run folder vanished: report, keep training
                self._warn(_one_line(f"hook command could not start ({event}, step {step}): {command}: {e}"))
                continue
            deadline = None if self.timeout is None else time.monotonic() + self.timeout
            self._jobs.append(_Job(procs[-1], command, event, step, deadline))
        return procs

    def poll(self) -> list[tuple[str, int]]:
        """Reap finished commands (killing overdue ones); returns (command, returncode) of those reaped."""
        done, still = [], []
        now = time.monotonic()
        for job in self._jobs:
            rc = job.proc.poll()
            if rc is None and job.deadline is not None and now >= job.deadline:
                _kill(job.proc)
                rc = job.proc.poll()
                self._warn(_one_line(f"hook command timed out after {self.timeout}s and was killed "
                                     f"({job.event}, step {job.step}): {job.command}"))
                if rc is None:
                    rc = -signal.SIGKILL if _POSIX else -1
                done.append((job.command, rc))
                continue
            if rc is None:
                still.append(job)
                continue
            if rc != 0:
                self._warn(_one_line(f"hook command exited with code {rc} ({job.event}, step {job.step}): "
                                     f"{job.command} (output in {self.log_path})"))
            done.append((job.command, rc))
        self._jobs = still
        return done

    def wait_all(self, timeout: float | None = None, kill: bool = False) -> list[str]:
        """Wait for all commands (at most ``timeout`` s); returns those still running, killed if ``kill``.

        Left running (the default), they outlive the trainer in their own session: an upload is not cut.
        """
        end = None if timeout is None else time.monotonic() + timeout
        while self._jobs:
            self.poll()
            if not self._jobs or (end is not None and time.monotonic() >= end):
                break
            time.sleep(0.05)
        left = [job.command for job in self._jobs]
        if left:
            what = "killed" if kill else "left running"
            self._warn(_one_line(f"{len(left)} hook command(s) still running after {timeout}s, {what}: "
                                 + "; ".join(left)))
            if kill:
                for job in self._jobs:
                    _kill(job.proc)
                self._jobs = []
        return left
