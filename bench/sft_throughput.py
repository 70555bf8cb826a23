"""SFT throughput with packing: our Trainer (objective sft) vs TRL's SFTTrainer(packing=True), same model, data,
sequence length, micro-batch and precision, on CPU, alternating in one process.

    python bench/sft_throughput.py [--steps 3] [--rounds 4] [--warmup 2] [--max-len 512] [--batch 8]
                                   [--precision bf16|fp32] [--threads N] [--conversations 2000]
                                   [--trl default,rows[,wrapped]] [--profile]

Data: the package's 128 sample conversations plus ../shared/data/pl/sft/speakleash_instruct_samples.jsonl (SpeakLeash
instructions, converted by `from_speakleash`) when present; those longer than --max-len tokens are left out (so
neither side truncates or drops anything), the rest repeated in order up to --conversations. Tokenizer: `gniazdo
tokenizer train` (vocab 8192) on the package's sample corpus, ChatML. Model (both sides): Llama, 6 layers, dim 384,
GQA 6/2 heads of 64, SwiGLU ffn 1024, untied output, the tokenizer's vocabulary, fp32 weights under bf16 autocast
(--precision fp32: no autocast), AdamW (lr 2e-4, betas 0.9/0.95, eps 1e-8, weight decay 0.1), clipping at 1.0, cosine
schedule without warm-up, no activation checkpointing, no torch.compile. The TRL model is ours written by
`gniazdo.model.save_pretrained` before any step and loaded as transformers' `LlamaForCausalLM`
(attn_implementation="sdpa"): the same initial weights. Both sides learn the same tokens (assistant content and its
<|im_end|>) with the mean cross-entropy over them; the data line shows both sides' token and learned-token totals.

Sides (a step = one optimizer step over --batch packed rows of at most --max-len tokens):
  ours          `prepare_sft(pack=True)` once (best-fit decreasing, whole conversations, document ids), then
                `Trainer(objective="sft")`. A step is the body of `Trainer.fit`'s loop: `data.next_step` (rows padded to
                max_len - 1, document ids), `train_step` (SDPA with a [B, 1, T, T] document mask, logits of every
                position, fp32 cross-entropy, backward, clipping, lr, AdamW), `_after_step`.
  TRL default   `SFTTrainer(args=SFTConfig(packing=True, per_device_train_batch_size=--batch))`: packing_strategy
                "bfd" (the default) forces padding_free, so each micro-batch is flattened into ONE sequence
                [1, ~batch * max_len] with position_ids restarting per conversation, which transformers turns into a
                block-diagonal causal mask over the whole flattened sequence (sdpa; the varlen kernels that make
                this cheap need flash-attn, i.e. a GPU). assistant_only_loss=True with ChatML carrying
                {% generation %} marks, activation_checkpointing=False (SFTConfig's default is on), optim
                adamw_torch_fused (transformers' default), TRL's chunked LM head + loss (its default; on CPU it scores
                every position), dataloader_num_workers=0.
  TRL rows      the same with per_device_train_batch_size=1 and gradient_accumulation_steps=--batch: each forward is
                one packed row, so attention spans max_len as in ours; the same rows per optimizer step. The fairest
                TRL setup on CPU.
  TRL wrapped   (only when asked) packing_strategy "wrapped": full rows, all-ones attention mask, conversations cut
                at row ends and attending to each other. Not equivalent (other training): a reference row, never
                the ratio's peer.

Timing: wall time from the end of one step to the end of the next on each side (TRL: a TrainerCallback's on_step_end,
so the HF loop's dataloader fetch and collation, forward, backward, clipping, optimizer, scheduler and logging checks
are all in); dataset preparation and the --warmup steps are not. Each TRL trainer runs its own `trainer.train()` in
a thread that a callback pauses after every round, so one side runs at a time; rounds go ours, TRL..., the order
reversed every other round. tokens/s: real (non-padding) input tokens per second; learned/s: tokens with a loss per
second; tok/cpu-s: tokens per second of this process's CPU time (steadier than wall time when other processes
share the cores, nearly immune with --threads 1). Medians over rounds. --profile: then one more round of each side
under torch.profiler (top ops by self CPU time). On a busy 2-core machine, --threads 1 gives steadier numbers (two
threads stall whenever another process takes a core). Ends with `ratio: <ours / best of TRL default and TRL rows,
tokens/s>`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/tokenize.py is named like the standard library's `tokenize`; run as a script this folder comes first on
# sys.path and would shadow the real module for everything imported below.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SPEAKLEASH = SHARED / "pl" / "sft" / "speakleash_instruct_samples.jsonl"
SHAPE = dict(dim=384, n_layers=6, n_heads=6, n_kv_heads=2, head_dim=64, ffn_dim=1024, tie_embeddings=False)
ROWS = 22  # rows of a profile table
OPTIM = dict(lr=2e-4, weight_decay=0.1, beta1=0.9, beta2=0.95, eps=1e-8, grad_clip=1.0)
#: ChatML exactly as `gniazdo tokenizer train` writes it, with TRL's {% generation %} marks around what is learned
CHATML_TRAINING = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ message['content'] + '<|im_end|>' + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# ---------------------------------------------------------------- data


def make_data(tmp: Path, max_len: int, n_convs: int) -> tuple[Path, list[dict], dict]:
    """Tokenizer, the conversations (each at most max_len tokens) and our packed prepared folder."""
    from gniazdo.resources import sample_path
    from gniazdo.sft import SFTPrepareConfig, from_speakleash, get_template, prepare_sft, validate_conversation
    from gniazdo.sft.conversations import BadRecord
    from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer

    tok = train_tokenizer(TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=8192,
                                               out=str(tmp / "tok"), progress=False))
    convs = [json.loads(line) for line in sample_path("instructions.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    if SPEAKLEASH.exists():
        for line in SPEAKLEASH.read_text(encoding="utf-8").splitlines():
            try:
                convs.append(validate_conversation(from_speakleash(json.loads(line))))
            except (BadRecord, ValueError):
                pass
    template = get_template("chatml")
    kept = []
    for c in convs:
        try:
            rendered = template.render_text(c["messages"])
        except BadRecord:
            continue
        (ids, _), = template.encode([rendered], tok)
        if len(ids) <= max_len:
            kept.append({"messages": [{"role": m["role"], "content": m["content"]} for m in c["messages"]]})
    unique = len(kept)
    kept = [kept[i % unique] for i in range(max(n_convs, unique))]
    path = tmp / "conversations.jsonl"
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in kept), encoding="utf-8")
    meta = prepare_sft(SFTPrepareConfig(tokenizer=str(tok), data=[str(path)], out=str(tmp / "sft"), max_len=max_len,
                                        pack=True, val_fraction=0.0, seed=0, progress=False))
    meta["unique_conversations"] = unique
    return tok, kept, meta


# ---------------------------------------------------------------- ours


class Ours:
    """Our Trainer; a step is exactly the body of ``Trainer.fit``'s loop."""

    def __init__(self, tmp: Path, prepared: Path, args: argparse.Namespace) -> None:
        from gniazdo.train import TrainConfig, Trainer

        cfg = TrainConfig.model_validate({
            "objective": "sft", "out": str(tmp / "run-ours"), "device": "cpu", "precision": args.precision,
            "compile": False, "seed": 0, "micro_batch_size": args.batch, "max_steps": 10**6,
            "model": {"preset": "tiny", "overrides": {**SHAPE, "max_seq_len": args.max_len}},
            "data": {"prepared": str(prepared)},
            "optim": OPTIM,
            "schedule": {"kind": "cosine", "warmup_steps": 0},
            "eval": {"interval": 0, "at_end": False}, "checkpoint": {"interval": 0, "resume": "never"},
            "log": {"interval": 10**6, "console": False, "plot": False}})
        self.name, self.t = "ours", Trainer(cfg)
        self.pad_id = int(self.t.data.source.pad_id)

    def step(self) -> tuple[int, int]:
        batches, stats = self.t.run_step()
        real = sum(int((b.input_ids != self.pad_id).sum()) for b in batches)
        return real, int(stats["targets"])

    def warm(self, n: int) -> None:
        for _ in range(n):
            self.step()

    def round(self, n: int) -> list[tuple[float, float, int, int]]:
        out = []
        last, last_cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            tokens, learned = self.step()
            now, cpu = time.perf_counter(), time.process_time()
            out.append((now - last, cpu - last_cpu, tokens, learned))
            last, last_cpu = now, cpu
        return out


# ---------------------------------------------------------------- TRL


class TRLSide:
    """``SFTTrainer.train()`` in a thread, paused by a callback after the warm-up and after each round."""

    def __init__(self, variant: str, tmp: Path, hf_dir: Path, tok_dir: Path, convs: list[dict],
                 args: argparse.Namespace) -> None:
        import datasets
        import torch
        from transformers import LlamaForCausalLM, PreTrainedTokenizerFast, TrainerCallback
        from transformers.trainer_callback import PrinterCallback
        from trl import SFTConfig, SFTTrainer

        self.name, self.variant = f"trl-{variant}", variant
        self.warmup, self.steps = args.warmup, args.steps
        rows_mode = variant == "rows"
        micro, accum = (1, args.batch) if rows_mode else (args.batch, 1)
        self.accum = accum
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tok_dir))
        tokenizer.chat_template = CHATML_TRAINING
        model = LlamaForCausalLM.from_pretrained(str(hf_dir), attn_implementation="sdpa", dtype=torch.float32)
        config = SFTConfig(
            output_dir=str(tmp / f"run-{self.name}"),
            max_steps=args.warmup + (args.rounds + bool(args.profile)) * args.steps,
            per_device_train_batch_size=micro, gradient_accumulation_steps=accum,
            packing=True, packing_strategy="wrapped" if variant == "wrapped" else "bfd", max_length=args.max_len,
            assistant_only_loss=True,
            bf16=args.precision == "bf16", use_cpu=True, activation_checkpointing=False,
            learning_rate=OPTIM["lr"], weight_decay=OPTIM["weight_decay"], adam_beta1=OPTIM["beta1"],
            adam_beta2=OPTIM["beta2"], adam_epsilon=OPTIM["eps"], max_grad_norm=OPTIM["grad_clip"],
            lr_scheduler_type="cosine", warmup_steps=0, seed=0, data_seed=0,
            report_to=[], logging_steps=10**6, save_strategy="no", eval_strategy="no",
            dataloader_num_workers=0, disable_tqdm=True)
        dataset = datasets.Dataset.from_list(convs)
        side = self

        class Pacer(TrainerCallback):
            def on_step_end(self, args_, state, control, **kwargs):  # noqa: ARG002
                side._on_step_end(state.global_step)

        t0 = time.perf_counter()
        self.trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                                  callbacks=[Pacer()])
        self.prep_s = time.perf_counter() - t0
        self.trainer.remove_callback(PrinterCallback)  # no metrics dict printed at the end of train()
        ds = self.trainer.train_dataset
        self.epoch_tokens = sum(len(x) for x in ds["input_ids"])
        self.epoch_learned = sum(sum(t != -100 for t in x) for x in ds["labels"])
        self.epoch_rows = len(ds)
        self.counts: collections.deque[tuple[int, int]] = collections.deque()
        inner = self.trainer.data_collator

        def counting(examples):
            batch = inner(examples)
            learned = int((batch["labels"][..., 1:] != -100).sum())
            mask = batch.get("attention_mask")
            real = int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
            self.counts.append((real, learned))
            return batch

        self.trainer.data_collator = counting
        self.records: list[tuple[float, float, int, int]] = []
        self.events: queue.Queue = queue.Queue()
        self.go = threading.Semaphore(0)
        self.last = self.last_cpu = 0.0
        self.prof, self.prof_started, self.prof_table = None, False, ""
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.trainer.train()
            self.events.put(("done", None))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.events.put(("error", e))

    def _on_step_end(self, step: int) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        real = learned = 0
        for _ in range(self.accum):
            r, lr = self.counts.popleft()
            real, learned = real + r, learned + lr
        if step > self.warmup:
            self.records.append((now - self.last, cpu - self.last_cpu, real, learned))
        if step >= self.warmup and (step - self.warmup) % self.steps == 0:
            if self.prof is not None and self.prof_started:  # the profiled round ends
                self.prof.stop()
                self.prof_table = self.prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=ROWS,
                                                                 max_name_column_width=50)
                self.prof = None
            self.events.put(("round", self.records))
            self.records = []
            self.go.acquire()
            if self.prof is not None:  # the profiler records the thread that starts it: start it here
                self.prof.start()
                self.prof_started = True
        self.last, self.last_cpu = time.perf_counter(), time.process_time()

    def _wait(self) -> list[tuple[float, float, int, int]]:
        kind, value = self.events.get()
        if kind == "error":
            raise value
        return value if kind == "round" else []

    def warm(self, n: int) -> None:  # noqa: ARG002 - the warm-up is the first args.warmup steps of train()
        self.thread.start()
        self._wait()
        if getattr(self.trainer.model, "is_gradient_checkpointing", False):  # train() would have turned it on
            raise SystemExit(f"{self.name} checkpoints activations; ours does not (not comparable)")

    def round(self, n: int) -> list[tuple[float, float, int, int]]:  # noqa: ARG002 - rounds are args.steps long
        self.go.release()
        return self._wait()

    def profile_round(self) -> str:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        self.prof = torch_profile(activities=[ProfilerActivity.CPU])
        self.round(self.steps)
        return self.prof_table

    def finish(self) -> None:
        self.go.release()
        self.thread.join()


# ---------------------------------------------------------------- profile


def profile(side, n: int) -> str:
    """The top ops by self CPU time over one more round of a side (after the measured rounds)."""
    if not isinstance(side, Ours):
        return side.profile_round()
    from torch.profiler import ProfilerActivity, profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        side.round(n)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=ROWS, max_name_column_width=50)


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3, help="optimizer steps per side per round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per side first")
    ap.add_argument("--max-len", type=int, default=512, help="tokens of a packed row (both sides)")
    ap.add_argument("--batch", type=int, default=8, help="packed rows per optimizer step (both sides)")
    ap.add_argument("--precision", default="bf16", choices=("bf16", "fp32"), help="bf16: fp32 weights, autocast")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--conversations", type=int, default=2000, help="repeat the conversations up to this many")
    ap.add_argument("--trl", default="default,rows", help="TRL setups: default, rows, wrapped (comma-separated)")
    ap.add_argument("--profile", action="store_true", help="then profile one more round of each side (torch.profiler)")
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")

    import datasets
    import torch
    import transformers
    import trl

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = [v.strip() for v in args.trl.split(",") if v.strip()]
    if set(variants) - {"default", "rows", "wrapped"} or not set(variants) & {"default", "rows"}:
        raise SystemExit(f"--trl: default and/or rows, optionally wrapped (got {args.trl!r})")

    with tempfile.TemporaryDirectory(prefix="sft-throughput-") as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        tok, convs, meta = make_data(tmp, args.max_len, args.conversations)
        split = meta["splits"]["train"]
        print(f"data: {meta['unique_conversations']} distinct conversations <= {args.max_len} tokens, repeated to "
              f"{len(convs)}; ours: {split['rows']} rows, {split['tokens']:,} tokens, {split['learned_tokens']:,} "
              f"learned ({time.perf_counter() - t0:.1f} s)")
        ours = Ours(tmp, tmp / "sft", args)
        from gniazdo.model import save_pretrained

        save_pretrained(ours.t.raw, tmp / "hf", tokenizer_dir=tok)  # before any step: the same initial weights
        sides: list = [ours]
        for v in variants:
            side = TRLSide(v, tmp, tmp / "hf", tok, convs, args)
            print(f"{side.name}: dataset preparation {side.prep_s:.1f} s (untimed), {side.epoch_rows} rows, "
                  f"{side.epoch_tokens:,} tokens, {side.epoch_learned:,} learned")
            sides.append(side)
        need = (args.warmup + args.rounds * args.steps + (args.steps if args.profile else 0)) * args.batch
        for s in sides:
            rows = s.t.data.n_items if s is ours else s.epoch_rows
            if rows < need:
                print(f"note: {s.name} has {rows} rows, fewer than the {need} the run takes (an epoch boundary "
                      "falls inside the timed steps); raise --conversations")
        warm = {}
        for s in sides:
            t0 = time.perf_counter()
            s.warm(args.warmup)
            warm[s.name] = time.perf_counter() - t0
        rec: dict[str, list[list[tuple[float, float, int, int]]]] = {s.name: [] for s in sides}
        for r in range(args.rounds):
            for s in (sides if r % 2 == 0 else sides[::-1]):
                rec[s.name].append(s.round(args.steps))
        profiles = {}
        if args.profile:
            for s in sides:
                profiles[s.name] = profile(s, args.steps)
        for s in sides[1:]:
            s.finish()

    def rates(name: str) -> tuple[list[float], list[float], list[float], float, float]:
        """Per round: tokens/s, learned tokens/s, tokens per CPU second; medians over steps: tokens, s/step."""
        tok_s = [sum(x[2] for x in rr) / sum(x[0] for x in rr) for rr in rec[name]]
        learn_s = [sum(x[3] for x in rr) / sum(x[0] for x in rr) for rr in rec[name]]
        tok_cpu = [sum(x[2] for x in rr) / sum(x[1] for x in rr) for rr in rec[name]]
        steps = [x for rr in rec[name] for x in rr]
        return tok_s, learn_s, tok_cpu, statistics.median(x[2] for x in steps), statistics.median(x[0] for x in steps)

    labels = {"ours": "gniazdo Trainer (sft, packed)", "trl-default": "TRL SFTTrainer packing=True (bfd)",
              "trl-rows": f"TRL bfd, batch 1 x accum {args.batch}", "trl-wrapped": "TRL wrapped (not equivalent)"}
    for name, table in profiles.items():
        print(f"\nprofile of {name}, {args.steps} steps:\n{table}")
    print(f"\ncpu, {torch.get_num_threads()} threads, torch {torch.__version__}, transformers "
          f"{transformers.__version__}, trl {trl.__version__}")
    print(f"6 layers, d 384, GQA 6/2, vocab {meta['tokenizer']['vocab_size']}, max_len {args.max_len}, "
          f"{args.batch} packed rows a step, {args.precision}{' autocast' if args.precision == 'bf16' else ''}, "
          f"AdamW; {args.rounds} rounds x {args.steps} steps, median of rounds")
    print(f"{'':38s} {'tokens/s':>9s} {'(min-max)':>13s} {'learned/s':>9s} {'tok/cpu-s':>9s} {'tokens/step':>11s} "
          f"{'s/step':>7s} {'warm-up s':>9s}")
    med, med_cpu = {}, {}
    for s in sides:
        tok_s, learn_s, tok_cpu, per_step, s_step = rates(s.name)
        med[s.name], med_cpu[s.name] = statistics.median(tok_s), statistics.median(tok_cpu)
        print(f"{labels[s.name]:38s} {med[s.name]:9,.0f} {min(tok_s):6,.0f}-{max(tok_s):<6,.0f} "
              f"{statistics.median(learn_s):9,.0f} {med_cpu[s.name]:9,.0f} {per_step:11,.0f} {s_step:7.2f} "
              f"{warm[s.name]:9.1f}")
    for n in med:
        if n != "ours":
            print(f"ours / {n}: {med['ours'] / med[n]:.2f} (tokens/s), {med_cpu['ours'] / med_cpu[n]:.2f} "
                  "(tokens per CPU second)")
    best = max((n for n in med if n in ("trl-default", "trl-rows")), key=med.get)
    print(f"ratio: {med['ours'] / med[best]:.2f}")


if __name__ == "__main__":
    main()
