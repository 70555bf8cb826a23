"""Training throughput: our Trainer vs transformers' LlamaForCausalLM with a plain AdamW loop, same model, same data.

    python bench/train_throughput.py [--steps 2] [--rounds 6] [--device cpu|cuda] [--compile on|off|both]
                                     [--peak-tflops X] [--threads N] [--peer-compile on|off] [--memory on|off]

Model (both sides): Llama, 6 layers, dim 384, GQA 6/2 heads of 64, SwiGLU ffn 1024, vocab 8192 (untied output),
seq 256, micro-batch 8 (2,048 tokens a step), fp32 weights under bf16 autocast, AdamW (lr 3e-4, betas 0.9/0.95,
eps 1e-8, weight decay 0.1), gradient clipping at 1.0.

Data: a tokenizer (vocab 8192) trained on a few books of ../shared/data/pl/corpus (or, without it, the package's
sample corpus), token shards written by `gniazdo.shards.tokenize_corpus`. Each step's windows are drawn from our
`PretrainData`; every side is given the very same input_ids/labels tensors.

Sides:
  ours            `Trainer(TrainConfig(precision=bf16, compile=...))`, timing `trainer.train_step(batches)`: the
                  real step (loss in fp32 over the full vocabulary, clipping, lr schedule, AdamW) — with
                  `compile: true` (each block compiled) and/or `compile: false`.
  HF              `LlamaForCausalLM(LlamaConfig(...), attn_implementation="sdpa")` + `torch.optim.AdamW` (fused on
                  CUDA only, as ours): autocast forward with labels (HF's loss, fp32 logits), backward,
                  clip_grad_norm_, step, zero_grad. No torch.compile: the plain loop.
  HF + compile    the same with `torch.compile(model)` (an extra row, not the ratio's peer).

Warm-up steps (compilation included) are excluded. Then --rounds rounds of --steps steps of each side in turn, in
one process, on the same windows; tokens/s is the median over rounds. MFU = tokens/s * flops_per_token / peak, with
our `Transformer.flops_per_token(seq_len)` (PaLM's 6N + attention) for every side; the peak is --peak-tflops, a known
GPU's datasheet bf16 figure, or else measured here with a 2048x2048 bf16 matmul loop (said in the output).
Peak memory: each side in a fresh child process (--memory on), warm-up first, then 2 timed steps; CPU: the peak
RSS of those steps (VmHWM reset after warm-up) minus the RSS before the model was built; CUDA:
torch.cuda.max_memory_allocated over the steps. Ends with `ratio: <ours/HF tokens/s>`: the median over rounds of
(ours' tokens/s / HF's in the same round), ours = the better `compile` setting.

Where ours gains on CPU (the matrix products are the same on both sides and at the bf16 kernel's peak): attention
of short sequences written out (baddbmm + bf16 softmax + bmm) instead of SDPA's flash kernel with its costly
backward, the cross-entropy in fp32 blocks (gniazdo/train/cross_entropy.py; compiled with `compile: true`) instead
of fp32 copies of the whole [tokens, vocab] logits, fused AdamW, and compiled blocks fusing the small element-wise
ops. On a shared machine prefer --threads 1 and read the tokens-per-CPU-second line as well.

With --device cuda it then trains our preset `1b` (vocab of the tokenizer) at seq 4096 (--big-batch sequences a
step) and prints its tokens/s, MFU (goal: 60%) and peak memory.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/tokenize.py is named like the standard library's `tokenize`; run as a script this folder comes first on
# sys.path and would shadow the real module for everything imported below.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pl" / "corpus"
BOOKS = ("pan-tadeusz.txt", "lord-jim.txt", "szewcy.txt")
SHAPE = dict(dim=384, n_layers=6, n_heads=6, n_kv_heads=2, head_dim=64, ffn_dim=1024, vocab_size=8192,
             tie_embeddings=False, max_seq_len=256)
OPTIM = dict(lr=3e-4, weight_decay=0.1, beta1=0.9, beta2=0.95, eps=1e-8, grad_clip=1.0)


# ---------------------------------------------------------------- data


def make_shards(tmp: Path, vocab: int) -> Path:
    """Tokenizer + train shards in tmp (a few seconds); the same folder for every side and child process."""
    from gniazdo.resources import sample_path
    from gniazdo.shards import tokenize_corpus
    from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer

    books = [SHARED / "books" / b for b in BOOKS if (SHARED / "books" / b).exists()]
    corpus = [str(b) for b in books] or [str(sample_path("corpus.jsonl"))]
    tok = train_tokenizer(TokenizerTrainConfig(corpus=corpus, vocab_size=vocab, out=str(tmp / "tok"),
                                               progress=False))
    tokenize_corpus(tok, corpus, tmp / "shards", val_fraction=0.0, seed=0)
    return tmp / "shards"


# ---------------------------------------------------------------- the sides


def train_config(out: Path, shards: Path, device: str, compile_: bool | str, seq_len: int, batch: int,
                 preset: str, overrides: dict[str, Any]):
    from gniazdo.train import TrainConfig

    return TrainConfig.model_validate({
        "out": str(out), "device": device, "precision": "bf16", "compile": compile_, "seed": 0,
        "micro_batch_size": batch, "max_steps": 10**6,
        "model": {"preset": preset, "overrides": overrides}, "data": {"shards": str(shards), "seq_len": seq_len},
        "optim": OPTIM, "schedule": {"kind": "cosine", "warmup_steps": 0},
        "eval": {"interval": 0, "at_end": False}, "checkpoint": {"interval": 0, "resume": "never"},
        "log": {"console": False, "plot": False}})


class Ours:
    def __init__(self, name: str, cfg) -> None:
        from gniazdo.train import Trainer

        self.name, self.trainer = name, Trainer(cfg)
        self.model = self.trainer.raw
        self.device = self.trainer.d.device

    def step(self, batches) -> float:
        return self.trainer.step_on(batches)["loss"]


class Peer:
    """transformers' Llama and a plain loop: what a user writes without a training framework."""

    def __init__(self, name: str, model_cfg, device, compiled: bool) -> None:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        from gniazdo.model import config_to_hf

        hf = {k: v for k, v in config_to_hf(model_cfg).items() if k not in ("architectures", "model_type",
                                                                             "torch_dtype")}
        torch.manual_seed(0)
        config = LlamaConfig(**{**hf, "use_cache": False}, attn_implementation="sdpa")
        self.name, self.device = name, device
        self.model = LlamaForCausalLM(config).to(device).train()
        self.forward = torch.compile(self.model) if compiled else self.model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=OPTIM["lr"], betas=(OPTIM["beta1"], OPTIM["beta2"]),
                                     eps=OPTIM["eps"], weight_decay=OPTIM["weight_decay"],
                                     fused=device.type == "cuda")

    def step(self, batches) -> float:
        import torch

        (b,) = batches
        x, y = b.input_ids.to(self.device, non_blocking=True), b.labels.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            loss = self.forward(input_ids=x, labels=y, shift_labels=y).loss  # y is already shifted
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), OPTIM["grad_clip"])
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.item()


def make_side(name: str, shards: Path, tmp: Path, device: str, seq_len: int, batch: int):
    """``ours``, ``ours-eager``, ``hf``, ``hf-compile``: built from scratch (same seed, same shape)."""
    import torch

    cfg = train_config(tmp / f"run-{name}", shards, device, name == "ours", seq_len, batch, "tiny",
                       {**SHAPE, "max_seq_len": seq_len})
    if name.startswith("ours"):
        return Ours(name, cfg)
    from gniazdo.model import model_config

    return Peer(name, model_config("tiny", **{**SHAPE, "max_seq_len": seq_len}), torch.device(device),
                name == "hf-compile")


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(side, batches_list) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for the steps. On a shared CPU the wall time includes the
    moments another process held our core; the CPU time does not (cache and memory-bandwidth contention remain)."""
    sync(side.device)
    t0, c0 = time.perf_counter(), time.process_time()
    for batches in batches_list:
        side.step(batches)
    sync(side.device)
    return time.perf_counter() - t0, time.process_time() - c0


# ---------------------------------------------------------------- peak FLOP/s and memory


def measured_peak_tflops(device) -> float:
    """Best of a few timed 2048x2048 bf16 matmul loops on this device (its practical dense bf16 peak)."""
    import torch

    n = 2048
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    reps = 50 if device.type == "cuda" else 4
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(5):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - t0) / reps)
    return 2 * n**3 / best / 1e12


def rss_kib(field: str = "VmRSS") -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def memory_child(args: argparse.Namespace) -> None:
    """One side alone in this process: warm-up, then the peak memory of 2 steps, as one JSON line."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    shards, tmp = Path(args.shards), Path(tempfile.mkdtemp(prefix="tt-mem-"))
    device = torch.device(args.device)
    from gniazdo.train.data import PretrainData, open_shards

    data = PretrainData(open_shards(shards, "train"), args.seq_len, args.batch, seed=0)
    steps = [data.next_step(1)[0] for _ in range(4)]
    base = rss_kib()
    side = make_side(args.memory_of, shards, tmp, args.device, args.seq_len, args.batch)
    for b in steps[:2]:
        side.step(b)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS (Linux)
    for b in steps[2:]:
        side.step(b)
    sync(device)
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else (rss_kib("VmHWM") - base) * 1024)
    print(json.dumps({"side": args.memory_of, "peak_bytes": peak}))


def child_memory(name: str, args: argparse.Namespace, shards: Path) -> float | None:
    cmd = [sys.executable, __file__, "--memory-of", name, "--shards", str(shards), "--device", args.device,
           "--seq-len", str(args.seq_len), "--batch", str(args.batch), "--threads", str(args.threads or 0)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    if r.returncode or not lines:
        print(f"  memory of {name}: child failed ({(r.stderr.strip().splitlines() or ['?'])[-1]})")
        return None
    return json.loads(lines[-1])["peak_bytes"]


# ---------------------------------------------------------------- the 1B run (GPU)


def big_run(args: argparse.Namespace, shards: Path, tmp: Path, peak: float) -> str:
    """Our preset 1b (vocab of the tokenizer) at seq 4096, compile on, bf16: tokens/s, MFU, peak memory."""
    import torch

    from gniazdo.shards import TokenShards

    seq = 4096
    if TokenShards(shards, prefix="train").n_tokens < (seq + 1) * args.big_batch + 1:
        return f"preset 1b, seq {seq}: not enough tokens in the shards for one step of {args.big_batch} windows"
    side = Ours("ours-1b", train_config(tmp / "run-1b", shards, args.device, True, seq, args.big_batch, "1b", {}))
    device = side.device
    fpt = side.model.flops_per_token(seq)
    for _ in range(args.warmup):
        side.step(side.trainer.data.next_step(1)[0])
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(args.big_steps):
        b = side.trainer.data.next_step(1)[0]
        times.append(timed_steps(side, [b])[0])
    tok_s = seq * args.big_batch / statistics.median(times)
    return (f"gniazdo Trainer, preset 1b ({side.model.num_params() / 1e9:.2f}B parameters), seq {seq}, batch "
            f"{args.big_batch}, bf16, compile: true: {tok_s:,.0f} tokens/s, MFU {100 * tok_s * fpt / peak:.1f}% "
            f"(goal 60%), peak allocated {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB, median of "
            f"{args.big_steps} steps")


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2, help="steps per side per round")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per side first (compilation)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--compile", default="both", choices=("on", "off", "both"), help="our trainer's compile")
    ap.add_argument("--peer-compile", default="on", choices=("on", "off"), help="also HF + torch.compile")
    ap.add_argument("--memory", default="on", choices=("on", "off"), help="peak memory in child processes")
    ap.add_argument("--peak-tflops", type=float, default=None, help="per device; default: known GPU or measured")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--big-batch", type=int, default=4, help="cuda: sequences of 4096 a step for the 1b run")
    ap.add_argument("--big-steps", type=int, default=10)
    ap.add_argument("--memory-of", help=argparse.SUPPRESS)
    ap.add_argument("--shards", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_of:
        return memory_child(args)

    import torch
    import transformers

    from gniazdo.train.metrics import peak_flops

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = {"on": ["ours"], "off": ["ours-eager"], "both": ["ours", "ours-eager"]}[args.compile]
    names += ["hf"] + (["hf-compile"] if args.peer_compile == "on" else [])
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="train-throughput-") as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        shards = make_shards(tmp, SHAPE["vocab_size"])
        print(f"data: {shards} ({time.perf_counter() - t0:.1f} s)")
        known = peak_flops(device, args.peak_tflops)
        measured = [] if known else [measured_peak_tflops(device)]

        sides, warm = [], {}
        for name in names:
            t0 = time.perf_counter()
            try:
                side = make_side(name, shards, tmp, args.device, args.seq_len, args.batch)
                data = sides[0].trainer.data if sides else side.trainer.data  # ours first: its windows for all
                for _ in range(args.warmup):
                    side.step(data.next_step(1)[0])
                sync(side.device)
            except Exception as e:  # noqa: BLE001 - an extra row (HF + compile) may fail; say so and go on
                if name in ("ours", "hf"):
                    raise
                print(f"{name}: failed ({type(e).__name__}: {str(e).strip().splitlines()[0][:120]}), left out")
                continue
            warm[name] = time.perf_counter() - t0
            sides.append(side)
        fpt = sides[0].model.flops_per_token(args.seq_len)
        data = sides[0].trainer.data
        tokens = args.seq_len * args.batch
        rates: dict[str, list[float]] = {s.name: [] for s in sides}
        cpu_rates: dict[str, list[float]] = {s.name: [] for s in sides}  # tokens per CPU-second
        for r in range(args.rounds):
            step_batches = [data.next_step(1)[0] for _ in range(args.steps)]
            order = sides if r % 2 == 0 else sides[::-1]  # neither side always runs right after the other
            for side in order:
                wall, cpu = timed_steps(side, step_batches)
                rates[side.name].append(tokens * args.steps / wall)
                cpu_rates[side.name].append(tokens * args.steps / cpu)
            if not known:  # again after each round: the best of all is the least disturbed by other processes
                measured.append(measured_peak_tflops(device))
        peak = known or max(measured) * 1e12
        how = ("--peak-tflops" if args.peak_tflops else "datasheet" if known
               else f"measured: 2048x2048 bf16 matmul, best of {len(measured)} runs between rounds")
        mem = {}
        del sides, side
        if args.memory == "on":
            for name in rates:
                mem[name] = child_memory(name, args, shards)
        big = big_run(args, shards, tmp, peak) if args.device == "cuda" else None

    labels = {"ours": "gniazdo Trainer, compile: true", "ours-eager": "gniazdo Trainer, compile: false",
              "hf": "HF LlamaForCausalLM + AdamW (plain)", "hf-compile": "HF LlamaForCausalLM + torch.compile"}
    mem_label = "peak alloc" if args.device == "cuda" else "peak RSS +"
    print(f"\ndevice {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}, transformers "
          f"{transformers.__version__}; peak {peak / 1e12:.3g} TFLOP/s ({how}); {os.cpu_count()} CPUs, 1-minute "
          f"load average {load[0]:.1f} before the run and {os.getloadavg()[0]:.1f} after it (other processes on "
          f"the cores make every figure noisy)")
    print(f"6 layers, d 384, GQA 6/2, vocab 8192, seq {args.seq_len}, batch {args.batch} ({tokens:,} tokens a step), "
          f"bf16 autocast, AdamW; {args.rounds} rounds x {args.steps} steps, median of rounds; "
          f"{fpt / 1e6:.1f} MFLOP/token")
    print(f"{'':40s} {'tokens/s':>9s} {'(min-max)':>13s} {'ms/step':>8s} {'MFU':>6s} {mem_label:>11s} "
          f"{'warm-up s':>9s}")
    for name, rs in rates.items():
        med = statistics.median(rs)
        m = mem.get(name)
        print(f"{labels[name]:40s} {med:9,.0f} {min(rs):6,.0f}-{max(rs):<6,.0f} {1e3 * tokens / med:8.0f} "
              f"{100 * med * fpt / peak:5.1f}% {(f'{m / 2**20:,.0f} MiB' if m else '-'):>11s} {warm[name]:9.1f}")
    if big:
        print(big)
    # The ratio pairs each round's ours with the same round's HF (same windows, seconds apart): a burst of load
    # from another process then hits both sides of a pair, where a ratio of two medians could mix calm and busy.
    paired = {n: sorted(a / b for a, b in zip(rates[n], rates["hf"])) for n in rates if n.startswith("ours")}
    for n, p in paired.items():
        of_medians = statistics.median(rates[n]) / statistics.median(rates["hf"])
        print(f"{labels[n]} / HF plain: round by round median {statistics.median(p):.2f} (min {p[0]:.2f}, "
              f"max {p[-1]:.2f}); ratio of the medians {of_medians:.2f}")
        if args.device == "cpu":
            by_cpu = statistics.median(cpu_rates[n]) / statistics.median(cpu_rates["hf"])
            print(f"{labels[n]} / HF plain in tokens per CPU-second (insensitive to time-sharing of the cores): "
                  f"{by_cpu:.2f}")
    best = max(paired, key=lambda n: statistics.median(paired[n]))
    print(f"ratio: {statistics.median(paired[best]):.2f}")


if __name__ == "__main__":
    main()
