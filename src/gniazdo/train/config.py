"""The training config: one YAML file (plus ``key=value`` overrides) describes a whole run.

Sections mirror the trainer's components (model, data, optim, schedule, loss, eval, checkpoint, log, hooks,
live, parallel). ``LIVE_FIELDS`` lists what may change while the run goes on (see ``gniazdo.train.live``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from gniazdo.config import Config


class ModelSection(Config):
    preset: str | None = "tiny"  # a name from gniazdo.model.PRESETS
    overrides: dict[str, Any] = {}  # fields of ModelConfig over the preset (vocab_size is taken from the shards)
    init_from: str | None = None  # an HF Llama/Mistral folder to continue pre-training from (preset ignored)


class DataSection(Config):
    shards: str | None = None  # pretrain: folder written by `gniazdo tokenize` (train-*.tok, val-*.tok, meta.json)
    seq_len: int = Field(256, ge=8)  # pretrain; fine-tuning uses the prepared max_len
    document_masking: bool = False  # pretrain: attention stays within documents, positions restart at each
    val_shards: str | None = None  # default: the val-*.tok of `shards`
    prepared: str | None = None  # sft / preference objectives: folder of `gniazdo sft prepare` / `gniazdo prefs ...`


class PrefsSection(Config):
    beta: float = Field(0.1, gt=0)  # dpo/dpop/ipo strength (ipo: its τ); orpo: weight of the odds-ratio term
    beta_chosen: float | None = Field(None, gt=0)  # dpop, ALLaMo's form: separate β for the chosen log-ratio
    beta_rejected: float | None = Field(None, gt=0)  # ... and for the rejected one
    dpop_lambda: float = Field(50.0, ge=0)  # dpop: weight of the penalty on a chosen answer losing probability


class OptimSection(Config):
    lr: float = Field(3e-4, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    eps: float = Field(1e-8, gt=0)
    grad_clip: float = Field(1.0, ge=0)  # 0 disables clipping
    fused: Literal["auto", True, False] = "auto"


class ScheduleSection(Config):
    kind: Literal["cosine", "linear", "constant", "wsd"] = "cosine"
    warmup_steps: int = Field(100, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)  # the lr decays to lr * min_lr_ratio
    decay_fraction: float = Field(0.2, gt=0, le=1)  # wsd: the last fraction of steps decays


class LossSection(Config):
    weighting: Literal["none", "mean", "openchat"] = "none"  # weighted CE normalisation (weights from the data)
    adaptive_lr: bool = False  # lr * sqrt(target tokens in the step / all positions of the step)


class EvalSection(Config):
    interval: int = Field(200, ge=0)  # steps; 0 = never
    batches: int = Field(20, ge=1)  # micro-batches of val data per evaluation (per rank)
    at_end: bool = True
    tasks: list[str] = []  # leaderboard MC tasks scored on the live model (e.g. [8tags, polemo2-in]); no checkpoint
    tasks_interval: int = Field(0, ge=0)  # steps; 0 = with each evaluation
    tasks_limit: int | None = Field(50, ge=1)  # documents per task
    tasks_data_dir: str | None = None  # local task data (`gniazdo eval import-data`); None = the HF hub datasets


class CheckpointSection(Config):
    interval: int = Field(500, ge=0)  # steps; 0 = only at the end
    keep_last: int = Field(2, ge=1)
    keep_best: bool = True  # also keep the checkpoint with the lowest val loss
    resume: str = "auto"  # auto (latest in out, if any) | never | a checkpoint folder


class WandbSection(Config):
    enabled: bool = False
    project: str = "gniazdo"
    mode: Literal["online", "offline"] = "offline"


class LogSection(Config):
    interval: int = Field(10, ge=1)
    console: bool = True
    tensorboard: bool = False
    wandb: WandbSection = WandbSection()
    plot: bool = True  # loss/lr/throughput PNG, refreshed at each eval
    peak_tflops: float | None = None  # per device, for MFU; known GPUs are detected, CPUs need this


class HooksSection(Config):
    on_checkpoint: list[str] = []  # shell commands run after each checkpoint
    on_epoch_end: list[str] = []
    on_train_end: list[str] = []
    python: list[str] = []  # "module:function" callbacks, each called with the Trainer to register its hooks


class LiveSection(Config):
    file: str | None = None  # default: <out>/live.yaml
    interval: int = Field(1, ge=1)  # check the file every N steps


class ParallelSection(Config):
    mode: Literal["auto", "none", "ddp", "fsdp"] = "auto"  # auto: ddp when torchrun starts several processes
    fsdp_reshard_after_forward: bool = True


class TrainConfig(Config):
    objective: Literal["pretrain", "sft", "dpo", "dpop", "ipo", "orpo"] = "pretrain"
    out: str  # run folder: checkpoints, metrics.jsonl, plots, resolved config
    run_name: str | None = None
    seed: int = 1337
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: Literal["auto", True, False] = False  # auto: try, fall back to eager on failure
    activation_checkpointing: bool = False
    freeze: list[str] = []  # "embeddings", "lm_head", "layers.3", "layers.0-5"
    micro_batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0)  # used when max_steps is not given
    model: ModelSection = ModelSection()
    data: DataSection
    optim: OptimSection = OptimSection()
    schedule: ScheduleSection = ScheduleSection()
    loss: LossSection = LossSection()
    prefs: PrefsSection = PrefsSection()
    eval: EvalSection = EvalSection()
    checkpoint: CheckpointSection = CheckpointSection()
    log: LogSection = LogSection()
    hooks: HooksSection = HooksSection()
    live: LiveSection = LiveSection()
    parallel: ParallelSection = ParallelSection()

    @model_validator(mode="after")
    def _length(self) -> TrainConfig:
        if self.max_steps is None and self.epochs is None:
            raise ValueError("give max_steps or epochs")
        if self.objective == "pretrain" and not self.data.shards:
            raise ValueError("objective pretrain needs data.shards (a `gniazdo tokenize` folder)")
        if self.objective != "pretrain" and not self.data.prepared:
            raise ValueError(f"objective {self.objective} needs data.prepared (a `gniazdo sft prepare` or "
                             "`gniazdo prefs` folder)")
        return self


#: dotted fields the live override file may change while training runs
LIVE_FIELDS = frozenset({
    "optim.lr", "optim.weight_decay", "optim.grad_clip",
    "schedule.kind", "schedule.warmup_steps", "schedule.min_lr_ratio", "schedule.decay_fraction",
    "grad_accum", "max_steps",
    "eval.interval", "eval.batches", "eval.tasks_interval", "eval.tasks_limit", "checkpoint.interval", "checkpoint.keep_last", "log.interval",
    "hooks.on_checkpoint", "hooks.on_epoch_end", "hooks.on_train_end",
    "loss.adaptive_lr", "prefs.beta", "prefs.beta_chosen", "prefs.beta_rejected", "prefs.dpop_lambda",
})
