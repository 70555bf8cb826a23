"""The training loop. Everything it uses lives in its own module (data, objective, optimizer, schedule,
checkpoint, metrics, parallel, hooks, live); this file only wires them and says in what order things happen.

    from gniazdo.train import TrainConfig, Trainer
    Trainer(TrainConfig(out="runs/tiny", data={"shards": "shards/"}, max_steps=200)).fit()
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import torch

from gniazdo.config import save_resolved
from gniazdo.errors import UserError
from gniazdo.train import checkpoint as ckpt
from gniazdo.train.build import apply_freeze, build_data, build_model, check_tokenizer, maybe_compile, undo_compile
from gniazdo.train.config import TrainConfig
from gniazdo.train.data import Batch, val_batches
from gniazdo.train.hooks import Hooks, ShellHookRunner, hook_env, load_python_hooks
from gniazdo.train.live import LiveControl, apply_update, install_sigusr1, live_path
from gniazdo.train.metrics import MetricsLogger, Throughput, memory_stats, peak_flops
from gniazdo.train.objective import build_objective
from gniazdo.train.optimizer import build_optimizer, set_lr
from gniazdo.train.parallel import all_reduce, broadcast_object, gradient_sync, init_distributed, shutdown, wrap_model
from gniazdo.train.schedule import lr_at


class Trainer:
    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg, self.out = cfg, Path(cfg.out)
        self.d = init_distributed(cfg.device, cfg.parallel.mode)
        run_data = build_data(cfg, self.d.rank, self.d.world)
        self.meta, self.data, self.seq_len = run_data.meta, run_data.train, run_data.seq_len
        self.data_dir = run_data.where
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank (FSDP shards what each rank built)
        self.model_cfg, model = build_model(cfg, self.meta, self.seq_len)
        apply_freeze(model, cfg.freeze)
        if cfg.activation_checkpointing:
            model.enable_activation_checkpointing()
        self.raw = model.to(self.d.device)
        self.model = wrap_model(self.raw, self.d, cfg.parallel.fsdp_reshard_after_forward)
        self.optimizer = build_optimizer(self.model, cfg.optim, self.d.device)
        maybe_compile(self.raw, cfg.compile)
        self.scaler = torch.amp.GradScaler(self.d.device.type, enabled=cfg.precision == "fp16")
        self.objective = build_objective(cfg)
        self.val = (val_batches(run_data.val, cfg.micro_batch_size, cfg.eval.batches, self.d.rank, self.d.world)
                    if run_data.val is not None else [])
        self.step, self.best_val, self.best = 0, math.inf, None
        self.stop_requested = False
        self.step_count = 0  # steps run by this process (the first one compiles)
        self.last: dict[str, Any] = {}
        resumed = self._resume()
        self.run_name = cfg.run_name or self.out.name
        self.hooks = Hooks()
        load_python_hooks(cfg.hooks.python, self.hooks, self)
        self.shell = ShellHookRunner(self.out, self.out / "hooks.log", warn=self._event)
        self.metrics = MetricsLogger(self.out, self.run_name, cfg.model_dump(mode="json"), cfg.log,
                                     is_main=self.d.is_main, resume_step=self.step if resumed else None,
                                     total_steps=self.total_steps)
        self.throughput = Throughput(self.raw.flops_per_token(self.seq_len),
                                     peak_flops(self.d.device, cfg.log.peak_tflops), self.d.world, self.total_steps)
        self.live = None
        if self.d.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.config_path = save_resolved(cfg, self.out)
            self.live = LiveControl(live_path(cfg), cfg)
            install_sigusr1(self.live)

    # ---- the loop -------------------------------------------------------------------------------------------

    @property
    def total_steps(self) -> int:
        if self.cfg.max_steps is not None:
            return self.cfg.max_steps
        return max(1, math.ceil(self.cfg.epochs * self.data.steps_per_epoch(self.cfg.grad_accum)))

    def fit(self) -> dict[str, Any]:
        try:
            while self.step < self.total_steps and not self.stop_requested:
                self.run_step()
            self._finish()
            return self.last
        finally:
            self.metrics.close()
            shutdown(self.d)

    def _first_step(self, batches: list[Batch]) -> dict[str, float]:
        """The first step compiles (with ``compile`` on): a failure is an error, or with ``compile: auto`` a
        fall-back to eager mode. Nothing has been applied to the weights when compilation fails."""
        if self.cfg.compile is False:
            return self.train_step(batches)
        try:
            return self.train_step(batches)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - inductor raises many kinds of errors
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if self.cfg.compile is not True and self.cfg.compile != "auto":
                raise
            if self.cfg.compile is True:
                raise UserError(f"torch.compile failed: {first} (set compile: auto to fall back to eager)") from None
            self.optimizer.zero_grad(set_to_none=True)
            undo_compile(self.raw)
            self.objective.fused_loss = False
            self._event(f"torch.compile failed, training in eager mode: {first}")
            return self.train_step(batches)

    def run_step(self) -> tuple[list[Batch], dict[str, float]]:
        """One step of :meth:`fit`: the next batches, :meth:`step_on` them, then logging, evaluation, hooks and
        checkpoints as configured. Returns the batches and the step's stats."""
        self.throughput.step_start()
        t0 = time.perf_counter()
        batches, epoch_end = self.data.next_step(self.cfg.grad_accum)
        self.throughput.data_wait(time.perf_counter() - t0)
        stats = self.step_on(batches)
        self._after_step(stats, epoch_end)
        return batches, stats

    def step_on(self, batches: list[Batch]) -> dict[str, float]:
        """One optimizer step on the given micro-batches, counted (the first compiles, with its fall-back)."""
        stats = self._first_step(batches) if self.step_count == 0 else self.train_step(batches)
        self.step += 1
        self.step_count += 1
        return stats

    def train_step(self, batches: list[Batch]) -> dict[str, float]:
        """One optimizer step over this rank's micro-batches. Each micro-batch's loss *sum* is divided by the
        step's global denominator (all micro-batches of all ranks), times the world size because DDP/FSDP
        average gradients over ranks: the gradient is then exactly that of the whole global batch."""
        denom, targets, positions = all_reduce([sum(self.objective.denominator(b) for b in batches),
                                                sum(b.n_targets for b in batches),
                                                sum(b.n_positions for b in batches)], self.d)
        total = torch.zeros((), device=self.d.device, dtype=torch.float64)
        sums: dict[str, float] = {}
        for i, batch in enumerate(batches):
            with gradient_sync(self.model, self.d, sync=i == len(batches) - 1), self._autocast():
                loss_sum, parts = self.objective.loss_sum(self.model, batch.to(self.d.device))
                self.scaler.scale(loss_sum * (self.d.world / max(denom, 1.0))).backward()
            total += loss_sum.detach().double()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
        self.scaler.unscale_(self.optimizer)
        clip = self.cfg.optim.grad_clip or float("inf")
        norm = torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None], clip)
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        lr = lr_at(self.step, self.total_steps, self.cfg.optim.lr, self.cfg.schedule)
        if self.cfg.loss.adaptive_lr:  # ALLaMo: steps with few target tokens move the weights less
            lr *= math.sqrt(targets / max(positions, 1.0))
        set_lr(self.optimizer, lr, self.cfg.optim.weight_decay)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        keys = sorted(sums)
        reduced = all_reduce([float(total)] + [sums[k] for k in keys], self.d)
        loss = reduced[0] / max(denom, 1.0)
        stats = {"loss": loss, "lr": lr, "grad_norm": float(norm), "tokens": positions, "targets": targets,
                 **{k: v / max(denom, 1.0) for k, v in zip(keys, reduced[1:])}}
        if self.cfg.objective in ("pretrain", "sft"):
            stats["ppl"] = math.exp(min(loss, 50.0))
        return stats

    @torch.no_grad()
    def evaluate(self) -> dict[str, float] | None:
        """Validation loss and perplexity over the same val windows each time; every rank takes part in every
        collective (equal batch counts per rank, one all-reduce at the end)."""
        if not self.val:
            return None
        self.model.eval()
        num = den = 0.0
        sums: dict[str, float] = {}
        for batch in self.val:
            with self._autocast():
                s, parts = self.objective.loss_sum(self.model, batch.to(self.d.device))
            num, den = num + float(s), den + self.objective.denominator(batch)
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
        self.model.train()
        keys = sorted(sums)
        reduced = all_reduce([num, den] + [sums[k] for k in keys], self.d)
        loss = reduced[0] / max(reduced[1], 1.0)
        result = {"val_loss": loss, **{f"val_{k}": v / max(reduced[1], 1.0) for k, v in zip(keys, reduced[2:])}}
        if self.cfg.objective in ("pretrain", "sft"):
            result["val_ppl"] = math.exp(min(loss, 50.0))
        return result

    def save(self) -> Path:
        state = {"data": self.data.state(), "best_val": self.best_val,
                 "best": self.best.name if self.best else None, "total_steps": self.total_steps,
                 "config": self.cfg.model_dump(mode="json"), "model_config": self.model_cfg.model_dump(mode="json"),
                 "tokenizer": self.meta["tokenizer"], "template": self.meta.get("template"),
                 "scaler": self.scaler.state_dict(), "metrics": self.last}
        path = ckpt.save_checkpoint(self.out / "checkpoints", self.step, self.model, self.optimizer, state, self.d)
        if self.d.is_main:
            ckpt.prune_checkpoints(self.out / "checkpoints", self.cfg.checkpoint.keep_last, self.best)
        self._fire("on_checkpoint", checkpoint=path)
        return path

    # ---- what happens around a step -------------------------------------------------------------------------

    def _after_step(self, stats: dict[str, float], epoch_end: bool) -> None:
        stats.update(self.throughput.step_end(self.step - 1, stats["tokens"]))
        self.last = {**self.last, **stats}
        if self.step % self.cfg.log.interval == 0 or self.step == self.total_steps:
            self.metrics.log(self.step, {**stats, "epoch": self.data.position.epoch, **memory_stats(self.d.device)},
                             kind="train")
        self.hooks.fire("on_step_end", self, step=self.step, metrics=stats)
        commands = self._poll_live() if self.step % self.cfg.live.interval == 0 else []
        self.stop_requested = "stop" in commands
        is_eval = self.cfg.eval.interval and self.step % self.cfg.eval.interval == 0
        improved = self._eval() if is_eval and self.step < self.total_steps else False
        tasks_every = self.cfg.eval.tasks_interval or self.cfg.eval.interval
        if self.cfg.eval.tasks and tasks_every and self.step % tasks_every == 0 and self.step < self.total_steps:
            self._eval_tasks()
        every = self.cfg.checkpoint.interval
        if (every and self.step % every == 0 and self.step < self.total_steps) or "checkpoint_now" in commands \
                or (self.stop_requested and self.step < self.total_steps):
            self._checkpoint(improved)
        if epoch_end:
            self._fire("on_epoch_end", epoch=self.data.position.epoch)

    def _eval(self) -> bool:
        result = self.evaluate()
        if result is None:
            return False
        self.last.update(result)
        self.metrics.log(self.step, result, kind="eval")
        if self.cfg.log.plot:
            self.metrics.plot()
        self.hooks.fire("on_eval", self, step=self.step, metrics=result)
        if result["val_loss"] < self.best_val:
            self.best_val = result["val_loss"]
            return True
        return False

    def _eval_tasks(self) -> None:
        """Leaderboard MC tasks on the live model (lm-eval, no checkpoint). Every rank runs the same documents, so
        FSDP's collectives inside each forward line up."""
        from gniazdo.eval.lm import evaluate_live

        e = self.cfg.eval
        with self._autocast():
            scores = evaluate_live(self.raw, Path(self.meta["tokenizer"]["path"]).parent, e.tasks, limit=e.tasks_limit,
                                   batch_size=self.cfg.micro_batch_size, data_dir=e.tasks_data_dir)
        self.last.update(scores)
        self.metrics.log(self.step, scores, kind="eval")
        if self.cfg.log.plot:
            self.metrics.plot()

    def _checkpoint(self, improved: bool) -> None:
        if improved and self.cfg.checkpoint.keep_best:
            self.best = ckpt.step_dir(self.out / "checkpoints", self.step)
        self.save()

    def _finish(self) -> None:
        improved = self._eval() if self.cfg.eval.at_end else False
        if self.cfg.eval.at_end and self.cfg.eval.tasks:
            self._eval_tasks()
        if self.step > 0 and (ckpt.latest_checkpoint(self.out / "checkpoints") != ckpt.step_dir(
                self.out / "checkpoints", self.step)):
            self._checkpoint(improved)
        self._fire("on_train_end")
        if self.d.is_main:
            if self.cfg.log.plot:
                self.metrics.plot()
            self.shell.wait_all(timeout=None)

    def _poll_live(self) -> list[str]:
        update = self.live.poll() if self.live is not None else None
        update = broadcast_object(update, self.d)
        if update is None:
            return []
        for message in update.messages():
            self._event(message)
        if update.changes:
            self.cfg = apply_update(self.cfg, update)
        return list(update.commands)

    def _fire(self, event: str, checkpoint: Path | None = None, epoch: int | None = None) -> None:
        self.hooks.fire(event, self, step=self.step, checkpoint=checkpoint, epoch=epoch)
        commands = getattr(self.cfg.hooks, event, [])
        if self.d.is_main and commands:
            env = hook_env(self.run_name, self.out, self.step, event, checkpoint=checkpoint, epoch=epoch,
                           config_path=self.config_path)
            self.shell.run(commands, env)
        if self.d.is_main:
            self.shell.poll()

    def _event(self, message: str) -> None:
        if hasattr(self, "metrics"):
            self.metrics.event(self.step, message)

    def _autocast(self):
        if self.cfg.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.cfg.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.d.device.type, dtype=dtype)

    # ---- resume ---------------------------------------------------------------------------------------------

    def _resume(self) -> bool:
        where = self.cfg.checkpoint.resume
        root = self.out / "checkpoints"
        if where == "never":
            if ckpt.latest_checkpoint(root) is not None:
                raise UserError(f"{root} already holds checkpoints and resume is 'never': use another out folder "
                                "or resume: auto")
            return False
        path = ckpt.latest_checkpoint(root) if where == "auto" else Path(where)
        if path is None:
            return False
        if not path.exists():
            raise UserError(f"checkpoint not found: {path}")
        state = ckpt.load_checkpoint(path, self.model, self.optimizer, self.d)
        check_tokenizer({"tokenizer": state.get("tokenizer") or {}}, self.meta, self.data_dir,
                        what=f"the checkpoint {path.name}")
        if state["model_config"] != self.model_cfg.model_dump(mode="json"):
            raise UserError(f"{path}: the checkpoint's model differs from this config's model")
        self.data.load_state(state["data"])
        self.step, self.best_val = int(state["step"]), float(state["best_val"])
        self.best = ckpt.step_dir(root, int(state["best"].split("-")[1])) if state.get("best") else None
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.last = dict(state.get("metrics") or {})
        return True


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) training; returns the last metrics."""
    return Trainer(cfg).fit()
