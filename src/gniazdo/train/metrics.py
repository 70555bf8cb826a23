"""Training metrics: throughput/MFU bookkeeping and one logger that fans a record out to every sink.

``metrics.jsonl`` in the run folder is the record of truth (one JSON object a line, flushed at once, so a killed
run keeps everything it logged); the console, TensorBoard, W&B and the PNG plot are views of the same records.
Only the main rank logs: the other ranks get a logger whose methods do nothing, so the trainer needs no ``if``s.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import torch

from gniazdo.errors import UserError
from gniazdo.fileio import atomic_open
from gniazdo.train.config import LogSection

#: dense (no sparsity) bf16 tensor-core peak per GPU, TFLOP/s, from NVIDIA's A100/H100/H200/GH200 datasheets.
#: Matched as substrings of ``torch.cuda.get_device_name()``, longest key first, so "GH200" wins over "H200"
#: and "H100 PCIe" (a lower-clocked card) over "H100".
PEAK_TFLOPS_BF16 = {
    "A100": 312, "H100": 989, "H200": 989, "GH200": 989,
    "H100 PCIE": 756, "H100 NVL": 835, "H200 NVL": 835,
}


def peak_flops(device: torch.device | str, configured_tflops: float | None) -> float | None:
    """Per-device peak FLOP/s for MFU: the configured value, else a known GPU's, else None (CPU, unknown GPU)."""
    if configured_tflops is not None:
        return configured_tflops * 1e12
    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device).upper()
    for key in sorted(PEAK_TFLOPS_BF16, key=len, reverse=True):
        if key in name:
            return PEAK_TFLOPS_BF16[key] * 1e12
    return None


class Throughput:
    """Step timing → tokens/s, MFU, ETA and data-wait share, averaged over the last ``window`` steps.

    A window rather than the whole run: the first steps (compilation, cache warm-up) would otherwise skew the
    numbers for a long time, and a live change (batch size, a slower data source) shows up within a few steps.
    ``tokens`` given to :meth:`step_end` are the step's tokens over all ranks; ``step`` is the 0-based index of
    the step just finished. ``total_steps`` may be reassigned while training (``max_steps`` is a live field).
    """

    def __init__(self, flops_per_token: float, peak_flops_per_device: float | None, world: int = 1,
                 total_steps: int | None = None, window: int = 10):
        self.flops_per_token = flops_per_token
        self.peak = peak_flops_per_device
        self.world = world
        self.total_steps = total_steps
        self._recent: deque[tuple[float, int, float]] = deque(maxlen=window)  # (seconds, tokens, data wait)
        self._start: float | None = None
        self._wait = 0.0
        self._last_end = time.perf_counter()  # so a caller that never calls step_start still gets step times

    def step_start(self) -> None:
        self._start = time.perf_counter()
        self._wait = 0.0

    def data_wait(self, seconds: float) -> None:
        """Add time this step spent waiting for data (may be called several times per step)."""
        self._wait += seconds

    def step_end(self, step: int, tokens: int) -> dict[str, float | None]:
        now = time.perf_counter()
        dt = now - (self._start if self._start is not None else self._last_end)
        self._recent.append((dt, tokens, self._wait))
        self._start, self._wait, self._last_end = None, 0.0, now
        seconds = sum(r[0] for r in self._recent)
        tok_s = sum(r[1] for r in self._recent) / seconds if seconds > 0 else 0.0
        mean_step = seconds / len(self._recent)
        eta = None if self.total_steps is None else max(0, self.total_steps - step - 1) * mean_step
        return {
            "tokens_per_s": tok_s,
            "tokens_per_s_per_device": tok_s / self.world,
            "mfu": tok_s * self.flops_per_token / (self.peak * self.world) if self.peak else None,
            "data_wait_frac": sum(r[2] for r in self._recent) / seconds if seconds > 0 else 0.0,
            "eta_s": eta,
            "step_time_s": dt,
        }


def memory_stats(device: torch.device | str) -> dict[str, float]:
    """CUDA: peak allocated since the previous call (the peak is reset) and reserved, GiB; CPU: process RSS, GiB."""
    device = torch.device(device)
    if device.type == "cuda":
        stats = {"mem_alloc_gb": torch.cuda.max_memory_allocated(device) / 2**30,
                 "mem_reserved_gb": torch.cuda.memory_reserved(device) / 2**30}
        torch.cuda.reset_peak_memory_stats(device)  # so each log interval reports its own peak
        return stats
    try:  # current RSS (Linux); no psutil dependency for one number
        with open("/proc/self/statm") as f:
            return {"rss_gb": int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30}
    except OSError:  # elsewhere: the peak RSS, in KiB on Linux and bytes on macOS
        import resource
        import sys
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"rss_gb": rss / (2**30 if sys.platform == "darwin" else 2**20)}


def _plain(value: Any) -> float | int | str | bool | None:
    """A JSON-safe scalar: tensors and numpy scalars become Python numbers; NaN/inf become None (strict JSON)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().item()
    elif hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars, without importing numpy
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3e}" if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5) else f"{v:.4g}"
    return str(v)


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class MetricsLogger:
    """Writes each record to ``out_dir/metrics.jsonl`` and to the sinks ``log_cfg`` turns on (main rank only).

    ``resume_step``: the step a resumed run restarts from; lines after it are dropped (the run redoes those
    steps). None: a new run, the file starts empty. ``total_steps`` only decorates the console line.
    """

    def __init__(self, out_dir: str | Path, run_name: str, config_dict: dict[str, Any], log_cfg: LogSection,
                 is_main: bool = True, resume_step: int | None = None, total_steps: int | None = None):
        self.out_dir, self.cfg, self.is_main, self.total_steps = Path(out_dir), log_cfg, is_main, total_steps
        self.path = self.out_dir / "metrics.jsonl"
        self._series: dict[str, tuple[list[int], list[float]]] = {}  # what plot() draws, kept in memory
        self._file = self._tb = self._wandb = self._console = None
        self._closed = False
        if not is_main:
            return
        # Optional sinks first: a missing package should fail before any file is touched.
        if log_cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError("log.tensorboard needs the tensorboard package: pip install tensorboard") from None
        if log_cfg.wandb.enabled:
            try:
                import wandb
            except ImportError:
                raise UserError("log.wandb needs the wandb package: pip install wandb") from None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        kept = self._kept_lines(resume_step)
        with atomic_open(self.path, "w", encoding="utf-8") as f:  # resume or not, never a half-rewritten file
            f.writelines(line + "\n" for line, _ in kept)
        for _, record in kept:
            self._remember(record)
        self._file = open(self.path, "a", encoding="utf-8")
        if log_cfg.console:
            from rich.console import Console
            self._console = Console(stderr=True, highlight=False)
        if log_cfg.tensorboard:
            self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))
        if log_cfg.wandb.enabled:
            self._wandb = wandb.init(project=log_cfg.wandb.project, name=run_name, config=config_dict,
                                     dir=str(self.out_dir), mode=log_cfg.wandb.mode)

    def _kept_lines(self, resume_step: int | None) -> list[tuple[str, dict]]:
        if resume_step is None or not self.path.exists():
            return []
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short when the previous run was killed
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= resume_step:
                kept.append((line, record))
        return kept

    def _remember(self, record: dict) -> None:
        keys = {"train": ("loss", "lr", "tokens_per_s", "mfu"), "eval": ("val_loss",)}.get(record.get("kind"), ())
        if record.get("kind") == "eval":
            keys = (*keys, *(k for k in record if k.endswith("/acc")))
        for key in keys:
            if isinstance(record.get(key), (int, float)):
                steps, values = self._series.setdefault(key, ([], []))
                steps.append(record["step"])
                values.append(record[key])

    def _write(self, step: int, kind: str, metrics: dict[str, Any]) -> dict[str, Any]:
        if self._closed:
            raise RuntimeError("MetricsLogger is closed")
        record: dict[str, Any] = {"step": int(step), "kind": kind, "time": time.time()}
        clash = record.keys() & metrics.keys()
        if clash:
            raise ValueError(f"metric names reserved by the logger: {sorted(clash)}")
        record.update((k, _plain(v)) for k, v in metrics.items())
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()  # a killed run keeps every line it wrote
        self._remember(record)
        return record

    def log(self, step: int, metrics: dict[str, Any], kind: str = "train") -> None:
        if not self.is_main:
            return
        record = self._write(step, kind, metrics)
        numbers = {f"{kind}/{k}": v for k, v in record.items()
                   if k not in ("step", "kind", "time") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self._tb is not None:
            for tag, v in numbers.items():
                self._tb.add_scalar(tag, v, step)
        if self._wandb is not None and numbers:
            self._wandb.log(numbers, step=step)
        if self._console is not None:
            self._console.print(self._console_line(record), markup=False)

    def event(self, step: int, message: str) -> None:
        if not self.is_main:
            return
        self._write(step, "event", {"message": message})
        if self._tb is not None:
            self._tb.add_text("events", message, step)
        if self._console is not None:
            self._console.print(f"[{step}] {message}", style="yellow", markup=False)

    def _console_line(self, r: dict[str, Any]) -> str:
        total = f"/{self.total_steps}" if self.total_steps else ""
        if r["kind"] != "train":
            rest = "  ".join(f"{k} {_fmt(v)}" for k, v in r.items() if k not in ("step", "kind", "time"))
            return f"{r['kind']} step {r['step']}{total}  {rest}"
        parts = [f"step {r['step']}{total}"]
        for key, label, show in (("loss", "loss", lambda v: f"{v:.4f}"), ("lr", "lr", lambda v: f"{v:.2e}"),
                                 ("grad_norm", "gnorm", lambda v: f"{v:.3f}"),
                                 ("tokens_per_s", "tok/s", lambda v: f"{v:,.0f}"),
                                 ("mfu", "MFU", lambda v: f"{100 * v:.1f}%"), ("eta_s", "ETA", _hms),
                                 ("mem_alloc_gb", "mem", lambda v: f"{v:.1f}G"),
                                 ("rss_gb", "rss", lambda v: f"{v:.1f}G")):
            if isinstance(r.get(key), (int, float)):
                parts.append(f"{label} {show(r[key])}")
        return "  ".join(parts)

    def plot(self) -> Path | None:
        """Loss (train and val), learning rate and tokens/s (MFU on a twin axis) against step, as a PNG."""
        if not self.is_main or not any(k in self._series for k in ("loss", "val_loss", "lr", "tokens_per_s")):
            return None
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend, safe in any thread

        tasks = sorted(k for k in self._series if k.endswith("/acc"))  # in-training leaderboard tasks
        fig = Figure(figsize=(8, 12 if tasks else 9), constrained_layout=True)
        FigureCanvasAgg(fig)
        axes = fig.subplots(4 if tasks else 3, 1, sharex=True)
        ax_loss, ax_lr, ax_tok = axes[:3]
        if tasks:
            for key in tasks:
                axes[3].plot(*self._series[key], "o-", label=key.removesuffix("/acc"), markersize=3)
            axes[3].set_ylabel("task accuracy")
            axes[3].legend(loc="lower right", fontsize="small")
            axes[3].grid(alpha=0.3)
        for key, label, style in (("loss", "train", "-"), ("val_loss", "val", "o-")):
            if key in self._series:
                ax_loss.plot(*self._series[key], style, label=label, markersize=3)
        ax_loss.set_ylabel("loss")
        if "loss" in self._series or "val_loss" in self._series:  # an empty legend only warns
            ax_loss.legend(loc="upper right")
        if "lr" in self._series:
            ax_lr.plot(*self._series["lr"], color="tab:green")
        ax_lr.set_ylabel("learning rate")
        if "tokens_per_s" in self._series:
            ax_tok.plot(*self._series["tokens_per_s"], color="tab:purple")
        ax_tok.set_ylabel("tokens/s")
        if "mfu" in self._series:
            steps, mfu = self._series["mfu"]
            twin = ax_tok.twinx()
            twin.plot(steps, [100 * m for m in mfu], color="tab:orange", alpha=0.6)
            twin.set_ylabel("MFU %")
        axes[-1].set_xlabel("step")
        for ax in (ax_loss, ax_lr, ax_tok):
            ax.grid(alpha=0.3)
        out = self.out_dir / "training.png"
        with atomic_open(out, "wb") as f:  # a viewer refreshing the file never sees half a PNG
            fig.savefig(f, format="png", dpi=100)
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
