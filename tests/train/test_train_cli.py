"""`gniazdo train` / `gniazdo export hf` as a user runs them: SIGKILL and resume give the same losses bit for bit,
live reconfiguration and hooks act on a running training, the export loads in transformers."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import pytest
import yaml

from .conftest import gniazdo_cmd, train_config, train_losses, write_config

SLOW_HOOK = '''
import os, time
from pathlib import Path

def register(hooks, trainer):
    def on_step_end(trainer, step, metrics):
        time.sleep(float(os.environ.get("STEP_SLEEP", "0")))
        live = os.environ.get("LIVE_AT_STEP")
        if live and step == int(live):  # write the live file from inside the run, at a known step
            Path(trainer.out, "live.yaml").write_text(os.environ["LIVE_YAML"])
    hooks.add("on_step_end", on_step_end)
'''


@pytest.fixture()
def slow_env(tmp_path):
    (tmp_path / "slowhook.py").write_text(SLOW_HOOK)
    return {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "OMP_NUM_THREADS": "1"}


def run(config, env, *extra, check=True) -> subprocess.CompletedProcess:
    res = subprocess.run([*gniazdo_cmd(), "train", "--config", str(config), *extra], capture_output=True, text=True,
                         env=env, timeout=300)
    if check:
        assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_sigkill_then_resume_is_bit_exact(tmp_path, shards, slow_env):
    over = {"max_steps": 12, "checkpoint.interval": 2, "eval.interval": 4, "hooks.python": ["slowhook:register"]}
    full_cfg = write_config(tmp_path / "full.yaml", train_config(tmp_path / "full", shards, **over))
    run(full_cfg, slow_env)
    reference = train_losses(tmp_path / "full")
    assert sorted(reference) == list(range(1, 13))

    kill_after = random.Random().randint(3, 9)
    cfg = write_config(tmp_path / "killed.yaml", train_config(tmp_path / "killed", shards, **over))
    proc = subprocess.Popen([*gniazdo_cmd(), "train", "--config", str(cfg)], env={**slow_env, "STEP_SLEEP": "0.15"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and any(json.loads(x).get("step", 0) >= kill_after
                                    for x in metrics.read_text().splitlines() if x.endswith("}")):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert max(train_losses(tmp_path / "killed")) < 12, "the run finished before it was killed"
    run(cfg, slow_env)  # the same command again resumes
    assert train_losses(tmp_path / "killed") == reference, f"killed after step {kill_after}"


def test_live_change_and_stop(tmp_path, shards, slow_env):
    live = yaml.safe_dump({"optim": {"lr": 1e-4}, "schedule.kind": "constant", "data.seq_len": 64})
    cfg = write_config(tmp_path / "c.yaml", train_config(tmp_path / "run", shards, max_steps=50,
                                                         **{"hooks.python": ["slowhook:register"],
                                                            "schedule.warmup_steps": 0}))
    run(cfg, {**slow_env, "LIVE_AT_STEP": "3", "LIVE_YAML": live})
    rec = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    lrs = {r["step"]: r["lr"] for r in rec if r["kind"] == "train"}
    assert lrs[5] == pytest.approx(1e-4) and lrs[2] != pytest.approx(1e-4)
    events = [r["message"] for r in rec if r["kind"] == "event"]
    assert any("optim.lr" in m and "0.0001" in m for m in events)
    assert any("refused data.seq_len" in m for m in events)
    # stop: a checkpoint is written and the run ends early; running again resumes and finishes
    (tmp_path / "run2").mkdir()
    cfg2 = write_config(tmp_path / "c2.yaml", train_config(tmp_path / "run2", shards, max_steps=50,
                                                           **{"hooks.python": ["slowhook:register"]}))
    run(cfg2, {**slow_env, "LIVE_AT_STEP": "4", "LIVE_YAML": "command: stop\n"})
    assert max(train_losses(tmp_path / "run2")) == 4  # the hook wrote the file at step 4, polled the same step
    assert (tmp_path / "run2" / "checkpoints" / "step-00000004").is_dir()


def test_shell_hooks_get_environment(tmp_path, shards, slow_env):
    cmd = 'echo "$GNIAZDO_STEP $GNIAZDO_CHECKPOINT $GNIAZDO_RUN_NAME $HOME_MARK" >> "$GNIAZDO_RUN_DIR/seen.txt"'
    cfg = write_config(tmp_path / "c.yaml", train_config(tmp_path / "run", shards, max_steps=4, run_name="hooked",
                                                         **{"checkpoint.interval": 2, "hooks.on_checkpoint": [cmd]}))
    run(cfg, {**slow_env, "HOME_MARK": "inherited"})
    lines = (tmp_path / "run" / "seen.txt").read_text().split("\n")
    assert lines[0].split() == ["2", str(tmp_path / "run" / "checkpoints" / "step-00000002"), "hooked", "inherited"]
    assert lines[1].split()[0] == "4"


def test_export_loads_in_transformers(tmp_path, shards, slow_env):
    transformers = pytest.importorskip("transformers")
    import torch

    cfg = write_config(tmp_path / "c.yaml", train_config(tmp_path / "run", shards, max_steps=3))
    run(cfg, slow_env)
    res = subprocess.run([*gniazdo_cmd(), "export", "hf", str(tmp_path / "run"), str(tmp_path / "hf")],
                         capture_output=True, text=True, env=slow_env, timeout=120)
    assert res.returncode == 0, res.stderr
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"))
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert type(hf).__name__ == "LlamaForCausalLM"
    from gniazdo.train.export import load_trained_model

    ours, _ = load_trained_model(tmp_path / "run")
    ids = torch.tensor([tok.encode("Zażółć gęślą jaźń", add_special_tokens=False)])
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, ours(ids), atol=1e-4)
    assert tok.apply_chat_template([{"role": "user", "content": "Cześć"}], tokenize=False).startswith("<|im_start|>")


def test_user_errors_are_one_line(tmp_path, shards, slow_env):
    cfg = write_config(tmp_path / "c.yaml", {**train_config(tmp_path / "run", shards), "optim": {"lr": -1}})
    res = run(cfg, slow_env, check=False)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == ["gniazdo: error: " + res.stderr.split("gniazdo: error: ")[1].strip()]
    res = subprocess.run([*gniazdo_cmd(), "export", "hf", str(tmp_path / "nothing"), str(tmp_path / "o")],
                         capture_output=True, text=True, env=slow_env)
    assert res.returncode == 2 and "checkpoint not found" in res.stderr
