from __future__ import annotations

import os
import pickle
import signal

import pytest

from gniazdo.train.config import TrainConfig
from gniazdo.train.live import LiveControl, LiveUpdate, apply_update, install_sigusr1, live_path


@pytest.fixture
def cfg(tmp_path):
    return TrainConfig(out=str(tmp_path), data={"shards": str(tmp_path)}, max_steps=10)


def write(path, text):
    """Write and bump mtime: two writes within one filesystem clock tick must still be seen as a change."""
    before = os.stat(path).st_mtime_ns if path.exists() else 0
    path.write_text(text)
    st = os.stat(path)
    if st.st_mtime_ns <= before:
        os.utime(path, ns=(st.st_atime_ns, before + 1_000_000))


@pytest.fixture
def live(tmp_path, cfg):
    return LiveControl(tmp_path / "live.yaml", cfg)


def test_no_file_gives_none(live, cfg):
    assert live.poll() is None
    assert live.poll() is None
    assert live.config == cfg


def test_live_path(cfg, tmp_path):
    assert live_path(cfg) == tmp_path / "live.yaml"
    assert live_path(cfg.model_copy(update={"live": cfg.live.model_copy(update={"file": "/x/l.yaml"})})) \
        == type(tmp_path)("/x/l.yaml")


@pytest.mark.parametrize("text", ["optim.lr: 1.0e-4\n", "optim:\n  lr: 1.0e-4\n", "optim: {lr: 1e-4}\n"])
def test_lr_change_dotted_or_nested(live, tmp_path, text):
    write(tmp_path / "live.yaml", text)
    update = live.poll()
    assert update.changes == {"optim.lr": (3e-4, 1e-4)}
    assert update.commands == [] and update.refused == {}
    assert live.config.optim.lr == 1e-4
    assert update.messages() == ["live: optim.lr 0.0003 -> 0.0001"]
    assert live.poll() is None  # unchanged file: not re-read


def test_same_value_again_is_no_change(live, tmp_path):
    write(tmp_path / "live.yaml", "optim.lr: 1.0e-4\n")
    assert live.poll() is not None
    write(tmp_path / "live.yaml", "optim: {lr: 0.0001}\n")  # rewritten, same value
    assert live.poll() is None
    write(tmp_path / "live.yaml", "optim: {lr: 0.0001}\nlog.interval: 5\nschedule: {kind: wsd}\n")
    update = live.poll()
    assert update.changes == {"log.interval": (10, 5), "schedule.kind": ("cosine", "wsd")}
    assert live.config.log.interval == 5 and live.config.optim.lr == 1e-4


def test_refusals_leave_config_unchanged(live, tmp_path, cfg):
    write(tmp_path / "live.yaml", "model: {overrides: {dim: 64}}\ndata.seq_len: 512\nmicro_batch_size: 2\n"
                                  "optim: {lr: -1, betta: 0.5}\nnonsense: 1\n")
    update = live.poll()
    assert update.changes == {} and update.commands == []
    assert update.refused["model.overrides.dim"] == "cannot change while training"
    assert update.refused["data.seq_len"] == "cannot change while training"
    assert update.refused["micro_batch_size"] == "cannot change while training"
    assert update.refused["optim.betta"] == "unknown key"
    assert update.refused["nonsense"] == "unknown key"
    assert update.refused["optim.lr"] == "Input should be greater than 0 (got -1)"
    assert "live: refused data.seq_len: cannot change while training" in update.messages()
    assert live.config == cfg


def test_invalid_value_keeps_previous_override(live, tmp_path):
    write(tmp_path / "live.yaml", "optim.lr: 1.0e-4\n")
    live.poll()
    write(tmp_path / "live.yaml", "optim.lr: -1\n")
    update = live.poll()
    assert update.changes == {} and "optim.lr" in update.refused
    assert live.config.optim.lr == 1e-4


def test_bad_yaml_refused_without_exception(live, tmp_path, cfg):
    path = tmp_path / "live.yaml"
    write(path, "optim.lr: 1.0e-4\n")
    live.poll()
    write(path, "optim: {lr: [\n")
    update = live.poll()
    assert list(update.refused) == [str(path)] and "not valid YAML" in update.refused[str(path)]
    assert update.changes == {} and live.config.optim.lr == 1e-4  # nothing reverted either
    assert live.poll() is None
    write(path, "- a list\n")
    assert "expected a mapping" in live.poll().refused[str(path)]


def test_removing_a_key_reverts_to_start_value(live, tmp_path):
    path = tmp_path / "live.yaml"
    write(path, "optim.lr: 1.0e-4\neval.interval: 50\n")
    live.poll()
    write(path, "eval.interval: 50\n")
    assert live.poll().changes == {"optim.lr": (1e-4, 3e-4)}
    assert live.config.optim.lr == 3e-4 and live.config.eval.interval == 50
    path.unlink()  # deleting the file reverts everything
    assert live.poll().changes == {"eval.interval": (50, 200)}
    assert live.poll() is None


def test_commands_are_one_shot(live, tmp_path):
    path = tmp_path / "live.yaml"
    write(path, "command: checkpoint_now\n")
    update = live.poll()
    assert update.commands == ["checkpoint_now"] and update.changes == {}
    assert update.messages() == ["live: command checkpoint_now"]
    assert live.poll() is None  # taken once
    write(path, "command: checkpoint_now\n")  # rewrite repeats it
    assert live.poll().commands == ["checkpoint_now"]
    write(path, "command: [stop, checkpoint_now, reboot]\noptim.lr: 1.0e-3\n")
    update = live.poll()
    assert update.commands == ["stop", "checkpoint_now"] and "reboot" in update.refused["command"]
    assert update.changes == {"optim.lr": (3e-4, 1e-3)}
    assert live.poll() is None


def test_command_present_at_start_is_ignored(tmp_path, cfg):
    path = tmp_path / "live.yaml"
    write(path, "command: stop\noptim.lr: 1.0e-4\n")
    live = LiveControl(path, cfg)
    update = live.poll()
    assert update.commands == [] and "ignored" in update.refused["command"]
    assert update.changes == {"optim.lr": (3e-4, 1e-4)}  # overrides in the file still apply
    write(path, "command: stop\noptim.lr: 1.0e-4\n")  # touched: now it counts
    assert live.poll().commands == ["stop"]


def test_sigusr1_requests_checkpoint(live):
    if not hasattr(signal, "SIGUSR1"):
        pytest.skip("no SIGUSR1")
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        assert install_sigusr1(live)
        os.kill(os.getpid(), signal.SIGUSR1)
        update = live.poll()
        assert update is not None and update.commands == ["checkpoint_now"]
        assert live.poll() is None
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_request_validates(live):
    with pytest.raises(ValueError, match="checkpoint_now"):
        live.request("explode")
    live.request("stop")
    live.request("stop")
    assert live.poll().commands == ["stop"]


def test_apply_update_on_other_rank(tmp_path, cfg):
    path = tmp_path / "live.yaml"
    main = LiveControl(path, cfg)
    other = cfg.model_copy(deep=True)
    for text in ("optim.lr: 1.0e-4\nhooks: {on_checkpoint: ['echo hi']}\n", "grad_accum: 4\n", ""):
        write(path, text)
        update = pickle.loads(pickle.dumps(main.poll()))  # what a broadcast does
        other = apply_update(other, update)
        assert other == main.config
    assert other == cfg  # the empty file reverted everything
    assert apply_update(cfg, LiveUpdate()) is cfg
