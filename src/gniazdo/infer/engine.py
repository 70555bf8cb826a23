"""Text generation with a KV cache: a batch that requests join and leave between steps, and an :class:`Engine`
around it for whole prompts (``generate``), streams (``stream``) and prompt log-probabilities.

    engine = Engine("out/export")                      # our model + the folder's tokenizer
    [c] = engine.generate(["Stolica Polski to"], SamplingParams(temperature=0, max_new_tokens=20))
    for delta in engine.stream("Dawno, dawno temu", SamplingParams(seed=1)):
        print(delta, end="", flush=True)

**Batching.** :class:`DecodeBatch` owns a preallocated :class:`~gniazdo.model.model.KVCache` with one row
("slot") per running request. ``add`` queues a request; each ``step`` first admits queued requests into free
slots (their prompts run together, left-padded, positions counted per row so padding does not shift RoPE) and
then advances every running request by one token. Finished and cancelled requests free their slot at once, so a
server gets continuous batching by calling ``add``/``cancel`` from its request handlers and ``step`` in a loop.
``Engine.generate`` is that loop for a fixed list of prompts.

**Text.** Tokens are turned into text incrementally (:class:`IncrementalDecoder`): a token that ends inside a
multi-byte character shows nothing until the character is complete. Stop strings are searched in the text and
the text is cut before them; text that could be the beginning of a stop string is held back until it is clear
either way, so a stream never shows half a stop string.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import torch
import torch.nn.functional as F

from gniazdo.errors import UserError
from gniazdo.infer.cpu_layout import CpuBlockedLinears, cpu_decode_layout
from gniazdo.infer.sampling import SamplingParams, make_generator, sample
from gniazdo.model.model import KVCache, Transformer

FinishReason = Literal["stop", "length"]
Prompt = str | Sequence[int]
PREFIX_TOKENS = 5  # prompt tokens decoded before the first new one, so a leading space survives (SentencePiece)


class InvalidRequest(UserError, ValueError):
    """A request the engine cannot run (one line; a ValueError too, so a server answers 400)."""


class ContextLengthError(InvalidRequest):
    """A request that does not fit the model's context; ``limit`` is the context length in tokens."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass
class Completion:
    """The result of one request. ``token_ids`` are the generated tokens, including an end token that finished
    the request (so ``completion_tokens`` counts what the model produced); ``text`` excludes it and any stop
    string. ``logprobs``: one per generated token when the request asked for them."""

    text: str
    token_ids: list[int]
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[float] | None = None


@dataclass
class Request:
    prompt_ids: list[int]
    params: SamplingParams
    id: str = ""


@dataclass
class Event:
    """What one step did for one request: a new token and the text it makes visible (possibly "").
    The request's last event has ``finish_reason`` and ``completion`` set."""

    request_id: str
    token_id: int
    text: str
    logprob: float | None = None
    finish_reason: FinishReason | None = None
    completion: Completion | None = None


class IncrementalDecoder:
    """Token ids in, text deltas out, without ever splitting a UTF-8 character.

    Byte-level BPE tokens are byte strings: "ś" may be split over two tokens, and decoding the first alone gives
    U+FFFD. Each push decodes a short window (from the previous emission point) with and without the new
    token; the difference is shown only once it does not end in U+FFFD. Decoding windows rather than the whole
    text keeps a step O(1). The window starts with a few prompt tokens because SentencePiece decoders drop the
    leading space of a text: the first new word would otherwise lose its space.
    """

    def __init__(self, decode: Callable[[list[int]], str], prefix: Sequence[int] = ()) -> None:
        self._decode = decode
        if decode(list(prefix)).endswith("\ufffd"):  # a prompt given as ids may end inside a character
            prefix = ()
        self.ids = list(prefix)
        self._start = 0  # window start
        self._read = len(self.ids)  # everything before this has been shown

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        shown = self._decode(self.ids[self._start: self._read])
        text = self._decode(self.ids[self._start:])
        if len(text) > len(shown) and not text.endswith("\ufffd"):
            self._start, self._read = self._read, len(self.ids)
            return text[len(shown):]
        return ""

    def flush(self) -> str:
        """Whatever is held back (an incomplete character at the very end shows as U+FFFD)."""
        shown = self._decode(self.ids[self._start: self._read])
        text = self._decode(self.ids[self._start:])
        self._start = self._read = len(self.ids)
        return text[len(shown):]


class StopText:
    """The visible text of a completion: cut before the first stop string, never showing part of one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = list(stops)
        self.text = ""  # all text so far (cut at a stop string once found)
        self.sent = 0  # characters already shown

    def feed(self, delta: str) -> tuple[str, bool]:
        """Add ``delta``; returns the text that may be shown now and whether a stop string was found."""
        old = len(self.text)
        self.text += delta
        hits = [i for s in self.stops if (i := self.text.find(s, max(0, old - len(s) + 1))) >= 0]
        if hits:  # a stop string cannot lie wholly in the old text: that was searched before
            self.text = self.text[: min(hits)]
            return self._show(len(self.text)), True
        # hold back the longest end of the text that is the beginning of some stop string
        hold = max((k for s in self.stops for k in range(min(len(s) - 1, len(self.text)), 0, -1)
                    if self.text.endswith(s[:k])), default=0)
        return self._show(max(self.sent, len(self.text) - hold)), False

    def flush(self) -> str:
        """The held-back rest, once no stop string can follow (the request ended otherwise)."""
        return self._show(len(self.text))

    def _show(self, end: int) -> str:
        out, self.sent = self.text[self.sent: end], end
        return out


@dataclass
class _Running:
    request: Request
    slot: int
    generator: torch.Generator | None
    decoder: IncrementalDecoder
    text: StopText
    pending: int = -1  # the last sampled token: the next decode step feeds it (it is not in the cache yet)
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)


class DecodeBatch:
    """Requests decoded together, joining and leaving between steps (continuous batching).

    ``add`` queues a request (checked against the context length at once) and returns its id; ``step`` admits
    queued requests into free slots, then generates one token for every running request and returns the
    :class:`Event` s; ``cancel`` drops a request, queued or running (its slot is free for the next step). Not
    thread-safe: one thread should own the batch (a server's handlers hand requests to that thread).

    ``max_len`` sizes the cache (tokens per slot): prompt + max_new_tokens of every request must fit.
    """

    def __init__(self, engine: Engine, max_batch: int | None = None, max_len: int | None = None) -> None:
        self.engine = engine
        self.max_len = min(max_len or engine.max_len, engine.max_len)
        m = engine.model
        self.cache = KVCache(m.cfg, max_batch or engine.max_batch, self.max_len, device=engine.device,
                             dtype=engine.dtype)
        self.slots: list[_Running | None] = [None] * self.cache.batch_size
        self.waiting: deque[Request] = deque()
        self._seen: torch.Tensor | None = None  # [slots, V] tokens present, for repetition penalties
        self._ids = itertools.count()

    def add(self, prompt: Prompt | Request, params: SamplingParams | None = None, request_id: str | None = None) -> str:
        """Queue a request (text or token ids); raises :class:`ContextLengthError` when it cannot fit."""
        if isinstance(prompt, Request):
            request = prompt
        else:
            request = Request(self.engine.tokens(prompt), params or SamplingParams(), request_id or "")
        if not request.prompt_ids:  # nothing to condition on: start from the beginning-of-text token
            request.prompt_ids = [self.engine.model.cfg.bos_id]
        if not request.id:
            request.id = f"req-{next(self._ids)}"
        elif any(r.id == request.id for r in self.waiting) or any(
                r is not None and r.request.id == request.id for r in self.slots):
            raise InvalidRequest(f"request id '{request.id}' is already in the batch")
        self.engine.check_length(len(request.prompt_ids), request.params.max_new_tokens, self.max_len)
        self.waiting.append(request)
        return request.id

    @torch.inference_mode()  # (it may clear rows of a tensor made in step's inference mode)
    def cancel(self, request_id: str) -> bool:
        """Forget the request; False when it is unknown (or already finished)."""
        for r in self.waiting:
            if r.id == request_id:
                self.waiting.remove(r)
                return True
        for run in self.slots:
            if run is not None and run.request.id == request_id:
                self._free(run)
                return True
        return False

    @property
    def running(self) -> int:
        return sum(r is not None for r in self.slots)

    def __bool__(self) -> bool:
        """True while there is work: requests queued or running."""
        return bool(self.waiting) or self.running > 0

    @torch.inference_mode()
    def step(self) -> list[Event]:
        events: list[Event] = []
        self._admit(events)
        if self.running:
            self._decode(events)
        return events

    # --- internals ----------------------------------------------------------------------------------------------

    def _admit(self, events: list[Event]) -> None:
        free = [i for i, r in enumerate(self.slots) if r is None]
        new = [self.waiting.popleft() for _ in range(min(len(free), len(self.waiting)))]
        if not new:
            return
        e = self.engine
        # One forward for all new prompts, left-padded to the longest: the last column is every row's next-token
        # logits. A scratch cache holds the padded rows; only their real slots are copied into the batch's.
        T = max(len(r.prompt_ids) for r in new)
        ids = torch.full((len(new), T), e.pad_id, dtype=torch.long)
        scratch = KVCache(e.model.cfg, len(new), T, device=e.device, dtype=e.dtype)
        for i, r in enumerate(new):
            ids[i, T - len(r.prompt_ids):] = torch.tensor(r.prompt_ids)
            scratch.set_length(i, 0, start=T - len(r.prompt_ids))
        logits = e._forward(ids.to(e.device), cache=scratch, logits_to_keep=1)[:, -1].float()
        runs = []
        for i, (slot, r) in enumerate(zip(free, new)):
            self.cache.copy_row(scratch, i, slot)
            run = _Running(r, slot, make_generator(r.params.seed, e.device),
                           IncrementalDecoder(e.decode, r.prompt_ids[-PREFIX_TOKENS:]), StopText(r.params.stop))
            self.slots[slot] = run
            runs.append(run)
            if r.params.repetition_penalty != 1.0:
                self._seen_row(slot)[torch.tensor(r.prompt_ids, device=e.device)] = True
        del scratch
        self._sample(runs, logits, events)

    def _decode(self, events: list[Event]) -> None:
        # Rows 0..hi-1 go through the model (a prefix of the cache: views, no copy); a free slot among them
        # computes a throwaway token at its slot 0, cheaper than gathering the running rows.
        hi = 1 + max(i for i, r in enumerate(self.slots) if r is not None)
        tokens = [r.pending if r is not None else self.engine.pad_id for r in self.slots[:hi]]
        x = torch.tensor(tokens, dtype=torch.long)[:, None].to(self.engine.device)
        logits = self.engine._forward(x, cache=self.cache)[:, -1].float()
        runs = [r for r in self.slots[:hi] if r is not None]
        if len(runs) < hi:
            for i, r in enumerate(self.slots[:hi]):
                if r is None:
                    self.cache.set_length(i, 0)
            logits = logits[torch.tensor([r.slot for r in runs], device=logits.device)]
        self._sample(runs, logits, events)

    def _seen_row(self, slot: int) -> torch.Tensor:
        if self._seen is None:
            self._seen = torch.zeros(len(self.slots), self.engine.vocab_size, dtype=torch.bool,
                                     device=self.engine.device)
        return self._seen[slot]

    def _sample(self, runs: list[_Running], logits: torch.Tensor, events: list[Event]) -> None:
        params = [r.request.params for r in runs]
        seen = None
        if self._seen is not None and any(p.repetition_penalty != 1.0 for p in params):
            seen = self._seen[torch.tensor([r.slot for r in runs], device=logits.device)]
        tokens = sample(logits, params, [r.generator for r in runs], seen)
        logprobs: list[float | None] = [None] * len(runs)
        want = [i for i, p in enumerate(params) if p.logprobs]
        if want:
            rows = torch.tensor(want, device=logits.device)
            chosen = torch.tensor([tokens[i] for i in want], device=logits.device)[:, None]
            values = F.log_softmax(logits[rows], dim=-1).gather(1, chosen)[:, 0].tolist()
            for i, v in zip(want, values):
                logprobs[i] = v
        for run, token, lp in zip(runs, tokens, logprobs):
            events.append(self._accept(run, token, lp))

    def _accept(self, run: _Running, token: int, logprob: float | None) -> Event:
        p = run.request.params
        run.ids.append(token)
        run.pending = token
        if logprob is not None:
            run.logprobs.append(logprob)
        if p.repetition_penalty != 1.0:
            self._seen_row(run.slot)[token] = True
        reason: FinishReason | None = None
        if token in p.stop_token_ids or (not p.ignore_eos and token in self.engine.eos_ids):
            reason = "stop"  # the end token is counted but never shown
            text = run.text.feed(run.decoder.flush())[0]
        else:
            text, stopped = run.text.feed(run.decoder.push(token))
            reason = "stop" if stopped else None
            if reason is None and len(run.ids) >= p.max_new_tokens:
                more, stopped = run.text.feed(run.decoder.flush())
                text, reason = text + more, "stop" if stopped else "length"
        event = Event(run.request.id, token, text, logprob)
        if reason is not None:
            event.text += run.text.flush()  # no stop string can follow any more: show what was held back
            event.finish_reason = reason
            event.completion = Completion(run.text.text, run.ids, reason, len(run.request.prompt_ids),
                                          len(run.ids), run.logprobs if p.logprobs else None)
            self._free(run)
        return event

    def _free(self, run: _Running) -> None:
        self.slots[run.slot] = None
        self.cache.set_length(run.slot, 0)
        if self._seen is not None:
            self._seen[run.slot] = False


class Engine:
    """A checkpoint folder ready to generate: our :class:`Transformer` and the folder's tokenizer.

    ``dtype`` None keeps the stored one; ``max_batch`` is the default number of slots of a :class:`DecodeBatch`;
    ``max_len`` caps the context (default: the model's ``max_position_embeddings``). On a CPU the weights are
    arranged for decoding (:func:`cpu_decode_layout`) and, in fp32, also copied into oneDNN's blocked layout for
    products of several rows (:class:`CpuBlockedLinears`: a batch's decode steps multiply about twice as fast,
    for twice the weights' memory).
    """

    def __init__(self, model_dir: str | Path, device: str | torch.device = "cpu",
                 dtype: torch.dtype | str | None = None, max_batch: int = 8, max_len: int | None = None) -> None:
        from gniazdo.model.hf import from_pretrained

        folder = Path(model_dir)
        model = from_pretrained(folder, dtype=dtype, device=device)
        on_cpu = model.embed_tokens.weight.device.type == "cpu"
        model.fuse_projections(column_major=on_cpu)
        if on_cpu:
            cpu_decode_layout(model)
        self._setup(model, _load_tokenizer(folder), max_batch, max_len, _generation_eos(folder))
        if on_cpu:
            self._blocked = CpuBlockedLinears.for_model(model)

    @classmethod
    def from_model(cls, model: Transformer, tokenizer: Any, max_batch: int = 8,
                   max_len: int | None = None) -> Engine:
        """An engine around a model in memory (evaluation during training, tests); ``tokenizer``: a
        transformers tokenizer or a folder."""
        engine = cls.__new__(cls)
        tok = _load_tokenizer(Path(tokenizer)) if isinstance(tokenizer, (str, Path)) else tokenizer
        engine._setup(model.eval(), tok, max_batch, max_len, ())
        return engine

    def _setup(self, model: Transformer, tokenizer: Any, max_batch: int, max_len: int | None,
               extra_eos: Sequence[int]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._blocked: CpuBlockedLinears | None = None  # see CpuBlockedLinears; Engine.__init__ sets it on CPU
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        cfg = model.cfg
        self.vocab_size = cfg.vocab_size
        self.max_batch = max_batch
        self.max_len = min(max_len or cfg.max_seq_len, cfg.max_seq_len)
        self.pad_id = next(i for i in (tokenizer.pad_token_id, cfg.pad_id, cfg.eos_id, 0) if i is not None)
        # Ends a request: the model's end token(s), and the chat template's end-of-turn token, which a chat model
        # emits where a base model would emit </s>.
        eos = {cfg.eos_id, *extra_eos}
        if tokenizer.eos_token_id is not None:
            eos.add(tokenizer.eos_token_id)
        template = getattr(tokenizer, "chat_template", None) or ""
        if "<|im_end|>" in template:
            end = tokenizer.convert_tokens_to_ids("<|im_end|>")
            if isinstance(end, int) and end != tokenizer.unk_token_id:
                eos.add(end)
        self.eos_ids = frozenset(i for i in eos if 0 <= i < cfg.vocab_size)
        # The Rust tokenizer directly: the transformers wrapper's per-call overhead is paid per generated token.
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", False):
            self.decode = lambda ids: backend.decode(ids, skip_special_tokens=True)
        else:
            self.decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)

    def _forward(self, ids: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """``model(ids, **kwargs)``; with several rows (a batch, a prompt) through the blocked weights, where
        the engine has them (:class:`CpuBlockedLinears`)."""
        if self._blocked is None or ids.numel() == 1:
            return self.model(ids, **kwargs)
        with self._blocked:
            return self.model(ids, **kwargs)

    # --- text ---------------------------------------------------------------------------------------------------

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def tokens(self, prompt: Prompt) -> list[int]:
        """A prompt's token ids (text is encoded as the tokenizer does by default; ids pass through)."""
        if isinstance(prompt, str):
            return self.encode(prompt)
        ids = [int(i) for i in prompt]
        bad = next((i for i in ids if not 0 <= i < self.vocab_size), None)
        if bad is not None:
            raise InvalidRequest(f"token id {bad} is outside the vocabulary (0..{self.vocab_size - 1})")
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    @property
    def chat_template(self) -> str | None:
        return getattr(self.tokenizer, "chat_template", None) or None

    def apply_chat_template(self, messages: Sequence[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        """The conversation as the checkpoint's ``chat_template`` (tokenizer_config.json) renders it."""
        if not self.chat_template:
            raise UserError("the checkpoint has no chat_template in tokenizer_config.json")
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def encode_chat(self, messages: Sequence[dict[str, Any]], add_generation_prompt: bool = True) -> list[int]:
        """Token ids of the rendered conversation; the template writes its own special tokens (<s>...), so the
        tokenizer adds none, as ``apply_chat_template(tokenize=True)`` does."""
        return self.encode(self.apply_chat_template(messages, add_generation_prompt), add_special_tokens=False)

    def check_length(self, prompt_tokens: int, max_new_tokens: int = 0, limit: int | None = None) -> None:
        limit = limit or self.max_len
        if prompt_tokens + max_new_tokens > limit:
            asked = f" + max_new_tokens {max_new_tokens}" if max_new_tokens else ""
            raise ContextLengthError(f"the context is {limit} tokens; the prompt has {prompt_tokens}{asked} "
                                     f"= {prompt_tokens + max_new_tokens}", limit)

    # --- generation ---------------------------------------------------------------------------------------------

    def new_batch(self, max_batch: int | None = None, max_len: int | None = None) -> DecodeBatch:
        return DecodeBatch(self, max_batch, max_len)

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams | Sequence[SamplingParams] | None = None,
                 max_batch: int | None = None) -> list[Completion]:
        """Complete every prompt (text or token ids); ``params``: one for all or one per prompt. Up to
        ``max_batch`` run at once, and a finished one's slot goes to the next prompt right away."""
        if isinstance(prompts, str) or (len(prompts) and isinstance(prompts[0], int)):
            raise TypeError("generate takes a list of prompts; use [prompt] for one")
        ps = [params or SamplingParams()] * len(prompts) if not isinstance(params, (list, tuple)) else list(params)
        if len(ps) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(ps)} sampling params")
        requests = [Request(self.tokens(p), sp, str(i)) for i, (p, sp) in enumerate(zip(prompts, ps))]
        if not requests:
            return []
        # the cache only as long as the longest request needs: less memory to allocate and to attend over
        need = max(max(len(r.prompt_ids), 1) + r.params.max_new_tokens for r in requests)
        batch = DecodeBatch(self, min(max_batch or self.max_batch, len(requests)), min(need, self.max_len))
        for r in requests:
            batch.add(r)
        done: dict[str, Completion] = {}
        while batch:
            for event in batch.step():
                if event.completion is not None:
                    done[event.request_id] = event.completion
        return [done[r.id] for r in requests]

    def stream(self, prompt: Prompt, params: SamplingParams | None = None) -> Iterator[str]:
        """Text deltas as they are generated; their concatenation is ``generate``'s text."""
        for event in self.stream_events(prompt, params):
            if event.text:
                yield event.text

    def stream_events(self, prompt: Prompt, params: SamplingParams | None = None) -> Iterator[Event]:
        """Every :class:`Event` of one request; the last carries the :class:`Completion`."""
        params = params or SamplingParams()
        ids = self.tokens(prompt)
        batch = DecodeBatch(self, 1, min(max(len(ids), 1) + params.max_new_tokens, self.max_len))
        batch.add(ids, params)
        while batch:
            yield from batch.step()

    @torch.inference_mode()
    def prompt_logprobs(self, token_ids: Sequence[int]) -> list[float | None]:
        """log p(token_i | tokens before it) for each token; None for the first (nothing predicts it). What
        ``/v1/completions`` with ``echo`` + ``logprobs`` reports, and what log-likelihood evaluation sums."""
        return self.prompt_logprobs_top(token_ids, 0)[0]

    @torch.inference_mode()
    def prompt_logprobs_top(self, token_ids: Sequence[int], top: int) -> tuple[list[float | None],
                                                                               list[dict[int, float] | None]]:
        """:meth:`prompt_logprobs` and, per position, the ``top`` most likely tokens with their log-probs (from
        one forward). Whether a continuation is the greedy one is whether each token is its position's top 1."""
        ids = self.tokens(token_ids)
        self.check_length(len(ids))
        if not ids:
            return [], []
        x = torch.tensor(ids, device=self.device)[None]
        logp = F.log_softmax(self._forward(x)[0, :-1].float(), dim=-1)
        values: list[float | None] = [None, *logp.gather(1, x[0, 1:, None])[:, 0].tolist()]
        tops: list[dict[int, float] | None] = [None] * len(ids)
        if top > 0 and len(ids) > 1:
            v, i = logp.topk(min(top, self.vocab_size), dim=-1)
            tops[1:] = [dict(zip(ii, vv)) for ii, vv in zip(i.tolist(), v.tolist())]
        return values, tops


def _load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")):
        raise UserError(f"{folder}: no tokenizer files (save the model with its tokenizer)")
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as e:
        raise UserError(f"{folder}: cannot load the tokenizer ({str(e).splitlines()[0]})") from None


def _generation_eos(folder: Path) -> list[int]:
    """End tokens of ``generation_config.json`` (a list in Llama 3 style checkpoints)."""
    path = folder / "generation_config.json"
    if not path.is_file():
        return []
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
    except ValueError:
        return []
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, int)]
