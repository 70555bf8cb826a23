"""Training metrics: throughput/MFU arithmetic, the JSONL record (flushing, resume), and the optional sinks."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch

from gniazdo.errors import UserError
from gniazdo.train import metrics
from gniazdo.train.config import LogSection
from gniazdo.train.metrics import MetricsLogger, Throughput, memory_stats, peak_flops


def cfg(**kw) -> LogSection:
    kw.setdefault("console", False)
    kw.setdefault("plot", False)
    return LogSection(**kw)


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


# -- peak FLOP/s ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, tflops", [
    ("NVIDIA H100 80GB HBM3", 989), ("NVIDIA GH200 480GB", 989), ("NVIDIA H200", 989),
    ("NVIDIA A100-SXM4-80GB", 312), ("NVIDIA H100 PCIe", 756), ("NVIDIA GeForce RTX 3090", None),
])
def test_peak_detected_from_device_name(monkeypatch, name, tflops):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    got = peak_flops(torch.device("cuda", 0), None)
    assert got == (None if tflops is None else tflops * 1e12)


def test_peak_configured_wins_and_cpu_has_none(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert peak_flops(torch.device("cuda"), 100.0) == 100e12
    assert peak_flops(torch.device("cpu"), 2.5) == 2.5e12
    assert peak_flops("cpu", None) is None


# -- throughput ----------------------------------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_mfu_arithmetic(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(metrics.time, "perf_counter", clock)
    tp = Throughput(flops_per_token=6e6, peak_flops_per_device=1e12, world=2)
    tp.step_start()
    clock.t += 2.0
    stats = tp.step_end(0, 2000)  # 1000 tokens/s over both ranks
    assert stats["tokens_per_s"] == pytest.approx(1000)
    assert stats["tokens_per_s_per_device"] == pytest.approx(500)
    assert stats["mfu"] == pytest.approx(0.003)
    assert stats["eta_s"] is None  # no total given
    assert Throughput(6e6, None).step_end(0, 10)["mfu"] is None


def test_eta_and_data_wait_over_the_window(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(metrics.time, "perf_counter", clock)
    tp = Throughput(flops_per_token=1.0, peak_flops_per_device=None, total_steps=100, window=2)
    for step, (seconds, wait) in enumerate([(10.0, 0.0), (1.0, 0.25), (3.0, 1.0)]):
        tp.step_start()
        tp.data_wait(wait / 2)
        tp.data_wait(wait / 2)  # accumulates within a step
        clock.t += seconds
        stats = tp.step_end(step, 100)
    # window of 2: the slow first step (compilation, say) has dropped out
    assert stats["step_time_s"] == pytest.approx(3.0)
    assert stats["tokens_per_s"] == pytest.approx(200 / 4.0)
    assert stats["data_wait_frac"] == pytest.approx(1.25 / 4.0)
    assert stats["eta_s"] == pytest.approx(97 * 2.0)  # steps 3..99 remain, 2 s each on average
    tp.total_steps = 3  # max_steps is live: the ETA follows
    tp.step_start()
    clock.t += 1.0
    assert tp.step_end(3, 100)["eta_s"] == 0


def test_step_time_without_step_start(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(metrics.time, "perf_counter", clock)
    tp = Throughput(1.0, None)
    clock.t += 4.0
    assert tp.step_end(0, 8)["step_time_s"] == pytest.approx(4.0)
    clock.t += 2.0
    assert tp.step_end(1, 8)["step_time_s"] == pytest.approx(2.0)


def test_memory_stats_cpu():
    stats = memory_stats(torch.device("cpu"))
    assert set(stats) == {"rss_gb"}
    assert 0.001 < stats["rss_gb"] < 1000


# -- the JSONL record ----------------------------------------------------------------------------------------------

def test_jsonl_lines_flushed_and_converted(tmp_path):
    logger = MetricsLogger(tmp_path, "run", {}, cfg())
    logger.log(1, {"loss": torch.tensor(2.5), "lr": np.float32(3e-4), "tokens": np.int64(512),
                   "grad_norm": float("nan"), "note": "ok", "mfu": None})
    # flushed at once: readable while the logger is still open (a killed run keeps it)
    (rec,) = lines(tmp_path / "metrics.jsonl")
    assert rec["step"] == 1 and rec["kind"] == "train" and isinstance(rec["time"], float)
    assert rec["loss"] == 2.5 and type(rec["tokens"]) is int and rec["tokens"] == 512
    assert rec["lr"] == pytest.approx(3e-4)
    assert rec["grad_norm"] is None and rec["note"] == "ok" and rec["mfu"] is None
    logger.log(2, {"val_loss": 2.1, "val_ppl": 8.2}, kind="eval")
    logger.event(2, "live change optim.lr 3e-4 -> 1e-4")
    recs = lines(tmp_path / "metrics.jsonl")
    assert [r["kind"] for r in recs] == ["train", "eval", "event"]
    assert recs[2]["message"] == "live change optim.lr 3e-4 -> 1e-4"
    with pytest.raises(ValueError, match="reserved"):
        logger.log(3, {"step": 1})
    logger.close()
    logger.close()  # twice is fine


def _write_run(tmp_path, steps):
    with MetricsLogger(tmp_path, "run", {}, cfg()) as logger:
        for s in steps:
            logger.log(s, {"loss": 1.0 / s})
            if s % 20 == 0:
                logger.log(s, {"val_loss": 2.0}, kind="eval")


def test_resume_keeps_lines_up_to_the_step(tmp_path):
    _write_run(tmp_path, [10, 20, 30, 40])
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 50, "kind": "tr')  # cut short by a kill
    with MetricsLogger(tmp_path, "run", {}, cfg(), resume_step=20) as logger:
        logger.log(30, {"loss": 0.5})
    recs = lines(tmp_path / "metrics.jsonl")
    assert [(r["step"], r["kind"]) for r in recs] == [(10, "train"), (20, "train"), (20, "eval"), (30, "train")]
    assert recs[-1]["loss"] == 0.5
    assert not list(tmp_path.glob(".metrics.jsonl.*"))  # no temp files left behind


def test_new_run_truncates(tmp_path):
    _write_run(tmp_path, [10, 20])
    with MetricsLogger(tmp_path, "run", {}, cfg()) as logger:
        logger.log(1, {"loss": 3.0})
    assert [r["step"] for r in lines(tmp_path / "metrics.jsonl")] == [1]


def test_non_main_rank_writes_nothing(tmp_path):
    out = tmp_path / "run"
    logger = MetricsLogger(out, "run", {}, cfg(console=True, plot=True, tensorboard=True,
                                               wandb={"enabled": True}), is_main=False)
    logger.log(1, {"loss": 1.0})
    logger.event(1, "hello")
    assert logger.plot() is None
    logger.close()
    assert not out.exists()


def test_console_line(tmp_path, capsys):
    with MetricsLogger(tmp_path, "run", {}, cfg(console=True), total_steps=1000) as logger:
        logger.log(120, {"loss": 2.34567, "lr": 3e-4, "grad_norm": 0.8, "tokens_per_s": 12345.6,
                         "mfu": 0.412, "eta_s": 3723.0})
        logger.log(200, {"val_loss": 2.1}, kind="eval")
        logger.event(200, "checkpoint [saved]")
    err = capsys.readouterr().err
    assert "step 120/1000" in err and "loss 2.3457" in err and "lr 3.00e-04" in err
    assert "tok/s 12,346" in err and "MFU 41.2%" in err and "ETA 1:02:03" in err
    assert "eval step 200/1000  val_loss 2.1" in err
    assert "checkpoint [saved]" in err  # brackets are not taken for rich markup


# -- plot ----------------------------------------------------------------------------------------------------------

def test_plot_png_with_val_line(tmp_path):
    with MetricsLogger(tmp_path, "run", {}, cfg()) as logger:
        assert logger.plot() is None  # nothing yet
        for s in range(1, 30):
            logger.log(s, {"loss": 5.0 / s, "lr": 1e-3, "tokens_per_s": 1000.0 + s, "mfu": 0.3})
            if s % 10 == 0:
                logger.log(s, {"val_loss": 6.0 / s}, kind="eval")
        path = logger.plot()
    assert path == tmp_path / "training.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert logger._series["val_loss"] == ([10, 20], [0.6, 0.3])
    assert not list(tmp_path.glob(".training.png.*"))


def test_resume_seeds_the_plot_history(tmp_path):
    _write_run(tmp_path, [10, 20, 30, 40])
    with MetricsLogger(tmp_path, "run", {}, cfg(), resume_step=30) as logger:
        assert logger._series["loss"][0] == [10, 20, 30]
        assert logger._series["val_loss"][0] == [20]


# -- optional sinks ------------------------------------------------------------------------------------------------

def test_missing_packages_are_user_errors(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails, installed or not
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(UserError, match="pip install tensorboard"):
        MetricsLogger(tmp_path / "a", "run", {}, cfg(tensorboard=True))
    with pytest.raises(UserError, match="pip install wandb"):
        MetricsLogger(tmp_path / "b", "run", {}, cfg(wandb={"enabled": True}))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


class FakeRun:
    def __init__(self, **kwargs):
        self.init_kwargs, self.logged, self.finished = kwargs, [], 0

    def log(self, data, step=None):
        self.logged.append((step, data))

    def finish(self):
        self.finished += 1


def test_wandb_receives_logs_with_step(tmp_path, monkeypatch):
    runs = []
    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: runs.append(FakeRun(**kw)) or runs[-1]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    config = {"optim": {"lr": 3e-4}}
    with MetricsLogger(tmp_path, "my-run", config, cfg(wandb={"enabled": True, "project": "p"})) as logger:
        logger.log(5, {"loss": torch.tensor(2.0), "lr": 1e-4, "mfu": None, "note": "x"})
        logger.log(10, {"val_loss": 1.5}, kind="eval")
    (run,) = runs
    assert run.init_kwargs == {"project": "p", "name": "my-run", "config": config, "dir": str(tmp_path),
                               "mode": "offline"}
    assert run.logged == [(5, {"train/loss": 2.0, "train/lr": 1e-4}), (10, {"eval/val_loss": 1.5})]
    assert run.finished == 1


def test_tensorboard_scalars(tmp_path, monkeypatch):
    try:  # the real thing when installed: an event file appears
        import tensorboard  # noqa: F401
    except ImportError:
        writers = []

        class FakeWriter:
            def __init__(self, log_dir):
                self.log_dir, self.scalars, self.texts, self.closed = log_dir, [], [], False
                writers.append(self)

            def add_scalar(self, tag, value, step):
                self.scalars.append((tag, value, step))

            def add_text(self, tag, text, step):
                self.texts.append((tag, text, step))

            def close(self):
                self.closed = True

        monkeypatch.setitem(sys.modules, "torch.utils.tensorboard",
                            types.SimpleNamespace(SummaryWriter=FakeWriter))
        with MetricsLogger(tmp_path, "run", {}, cfg(tensorboard=True)) as logger:
            logger.log(3, {"loss": 2.0, "lr": 1e-3})
            logger.log(4, {"val_loss": 1.0}, kind="eval")
            logger.event(4, "hi")
        (w,) = writers
        assert w.log_dir == str(tmp_path / "tensorboard") and w.closed
        assert w.scalars == [("train/loss", 2.0, 3), ("train/lr", 1e-3, 3), ("eval/val_loss", 1.0, 4)]
        assert w.texts == [("events", "hi", 4)]
    else:
        with MetricsLogger(tmp_path, "run", {}, cfg(tensorboard=True)) as logger:
            logger.log(3, {"loss": 2.0})
        assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_plot_without_loss_warns_nothing(tmp_path, recwarn):
    with MetricsLogger(tmp_path, "run", {}, cfg()) as logger:
        logger.log(1, {"lr": 1e-3})
        logger.log(2, {"lr": 2e-3})
        assert logger.plot().exists()
    assert not [w for w in recwarn if "legend" in str(w.message).lower() or "artists" in str(w.message)]
