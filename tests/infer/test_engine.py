"""The engine on a tiny saved checkpoint: same tokens as a cache-less loop and as transformers, batching,
streaming, stop conditions, sampling, log-probabilities, the context limit and the chat template."""

from __future__ import annotations

import pytest
import torch

from gniazdo.infer import ContextLengthError, Engine, SamplingParams
from gniazdo.model import from_pretrained

from . import checkpoint

PROMPTS = ["Dawno, dawno temu w Krakowie", "Ala ma kota", "Zażółć gęślą jaźń, powiedział wójt.",
           "W Polsce jest wiele pięknych miejsc, na przykład"]
GREEDY = SamplingParams(temperature=0, max_new_tokens=24)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return checkpoint(tmp_path_factory.mktemp("engine"))


@pytest.fixture(scope="module")
def mistral_folder(tmp_path_factory):
    return checkpoint(tmp_path_factory.mktemp("engine-mistral"), arch="mistral", sliding_window=6,
                      tie_embeddings=False, seed=1)


@pytest.fixture(scope="module")
def engine(folder):
    return Engine(folder)


def until_end(ids: list[int], ends) -> list[int]:
    """ids up to and including the first end token."""
    for i, t in enumerate(ids):
        if t in ends:
            return ids[: i + 1]
    return ids


@torch.no_grad()
def greedy_without_cache(folder, prompt_ids: list[int], n: int, ends) -> list[int]:
    model = from_pretrained(folder)
    ids = list(prompt_ids)
    for _ in range(n):
        ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
        if ids[-1] in ends:
            break
    return ids[len(prompt_ids):]


@pytest.mark.parametrize("which", ["llama", "mistral"])
def test_greedy_equals_no_cache_and_transformers(which, folder, mistral_folder):
    from transformers import AutoModelForCausalLM

    path = folder if which == "llama" else mistral_folder
    engine = Engine(path)
    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    for prompt in PROMPTS[:2]:
        ids = engine.encode(prompt)
        [ours] = engine.generate([ids], GREEDY)
        assert ours.prompt_tokens == len(ids)
        assert ours.token_ids == greedy_without_cache(path, ids, 24, engine.eos_ids)
        with torch.no_grad():
            theirs = hf.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=24, do_sample=False)[0, len(ids):].tolist()
        # transformers stops only at config.json's eos; we also stop at the template's <|im_end|>
        assert ours.token_ids == until_end(theirs, engine.eos_ids)
        assert len(set(ours.token_ids)) > 3  # a real sequence, not one token repeated


def test_batch_with_left_padding_equals_each_prompt_alone(engine):
    alone = [engine.generate([p], GREEDY)[0] for p in PROMPTS]
    batched = engine.generate(PROMPTS, GREEDY)
    assert len({c.prompt_tokens for c in batched}) > 1  # the prompts really needed padding
    assert [c.token_ids for c in batched] == [c.token_ids for c in alone]
    assert [c.text for c in batched] == [c.text for c in alone]
    # more prompts than slots: later ones take the slots of finished ones
    params = [SamplingParams(temperature=0, max_new_tokens=n) for n in (3, 24, 10, 24)]
    queued = engine.generate(PROMPTS, params, max_batch=2)
    assert [c.token_ids for c in queued] == [c.token_ids[:n] for c, n in zip(alone, (3, 24, 10, 24))]


def test_stream_adds_up_to_the_completion(engine):
    for seed in range(4):  # sampling from a random model: all sorts of bytes, split characters included
        params = SamplingParams(temperature=1.0, max_new_tokens=40, seed=seed)
        [c] = engine.generate([PROMPTS[2]], params)
        deltas = list(engine.stream(PROMPTS[2], params))
        assert "".join(deltas) == c.text
        assert c.text == engine.tokenizer.decode(c.token_ids, skip_special_tokens=True)
        assert all(deltas)


def test_stop_strings_cut_the_text_and_are_never_streamed(engine):
    [free] = engine.generate([PROMPTS[0]], GREEDY)
    text = free.text
    stop = text[len(text) // 2: len(text) // 2 + 3]  # three characters from the middle of the greedy output
    assert stop.strip()
    params = SamplingParams(temperature=0, max_new_tokens=24, stop=[stop, "nigdy-nie-wystąpi"])
    [c] = engine.generate([PROMPTS[0]], params)
    assert c.finish_reason == "stop" and c.text == text[: text.index(stop)]
    assert c.token_ids == free.token_ids[: c.completion_tokens]  # stops at the token that completed it
    deltas = list(engine.stream(PROMPTS[0], params))
    assert "".join(deltas) == c.text
    shown = ""
    for d in deltas:
        shown += d
        assert not any(shown.endswith(stop[:k]) for k in range(1, len(stop)) if not c.text.endswith(stop[:k]))


def test_finish_reasons_end_tokens_and_ignore_eos(engine, folder):
    [c] = engine.generate([PROMPTS[1]], SamplingParams(temperature=0, max_new_tokens=5))
    assert c.finish_reason == "length" and c.completion_tokens == 5
    # any token made an end token: stops there, counted but not shown
    [s] = engine.generate([PROMPTS[1]], SamplingParams(temperature=0, max_new_tokens=5,
                                                       stop_token_ids=[c.token_ids[2]]))
    assert s.finish_reason == "stop" and s.token_ids == c.token_ids[:3]
    assert s.text == engine.tokenizer.decode(c.token_ids[:2])
    # the model's own </s>, forced as the third token
    eos = engine.model.cfg.eos_id
    forced = Engine(folder)
    forward, calls = forced.model.forward, []

    def force_eos_third(*args, **kwargs):
        out = forward(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            out[..., eos] = out.max() + 10
        return out

    forced.model.forward = force_eos_third
    [e] = forced.generate([PROMPTS[1]], SamplingParams(temperature=0, max_new_tokens=5))
    assert e.finish_reason == "stop" and e.token_ids == [*c.token_ids[:2], eos]
    assert e.text == engine.tokenizer.decode(c.token_ids[:2]) and e.completion_tokens == 3
    calls.clear()
    [g] = forced.generate([PROMPTS[1]], SamplingParams(temperature=0, max_new_tokens=5, ignore_eos=True))
    assert g.finish_reason == "length" and g.token_ids[2] == eos and g.completion_tokens == 5


def test_seeds_make_sampling_reproducible(engine):
    params = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=20, seed=123)
    a = engine.generate([PROMPTS[0]], params)[0].token_ids
    assert engine.generate([PROMPTS[0]], params)[0].token_ids == a
    # the same request next to others in a batch draws the same tokens
    mixed = engine.generate(PROMPTS[:3], [SamplingParams(temperature=1.0, seed=5, max_new_tokens=20), params,
                                          GREEDY])
    assert engine.generate([PROMPTS[1]], params)[0].token_ids == mixed[1].token_ids
    others = {tuple(engine.generate([PROMPTS[0]], params.model_copy(update={"seed": s}))[0].token_ids)
              for s in range(5)}
    assert len(others) > 1


def test_top_k_1_is_greedy_and_repetition_penalty_bites(engine):
    greedy = engine.generate([PROMPTS[3]], SamplingParams(temperature=0, max_new_tokens=40))[0]
    top1 = engine.generate([PROMPTS[3]], SamplingParams(temperature=1.3, top_k=1, max_new_tokens=40, seed=1))[0]
    assert top1.token_ids == greedy.token_ids
    penalized = engine.generate([PROMPTS[3]], SamplingParams(temperature=0, max_new_tokens=40,
                                                             repetition_penalty=3.0))[0]
    assert penalized.token_ids != greedy.token_ids
    prompt = set(engine.encode(PROMPTS[3]))

    def repeats(ids: list[int]) -> int:  # tokens already seen in the prompt or earlier in the output
        seen, n = set(prompt), 0
        for t in ids:
            n += t in seen
            seen.add(t)
        return n

    assert repeats(penalized.token_ids) < repeats(greedy.token_ids)


def test_prompt_logprobs_equal_a_full_forward(engine):
    ids = engine.encode(PROMPTS[2])
    lps = engine.prompt_logprobs(ids)
    assert lps[0] is None and len(lps) == len(ids)
    with torch.no_grad():
        ref = torch.log_softmax(engine.model(torch.tensor([ids]))[0].float(), dim=-1)
    for i in range(1, len(ids)):
        assert lps[i] == pytest.approx(ref[i - 1, ids[i]].item(), abs=1e-5)
    values, tops = engine.prompt_logprobs_top(ids, 2)
    assert values == lps and tops[0] is None
    for i in range(1, len(ids)):
        best = ref[i - 1].topk(2)
        assert list(tops[i]) == best.indices.tolist()
    # generated tokens' logprobs agree with scoring prompt + completion afterwards
    [c] = engine.generate([ids], SamplingParams(temperature=0, max_new_tokens=6, logprobs=True))
    rescored = engine.prompt_logprobs(ids + c.token_ids)[len(ids):]
    assert c.logprobs == pytest.approx(rescored, abs=1e-4)


def test_context_length_is_checked(engine):
    limit = engine.max_len
    assert limit == 512
    long = list(range(10, 10 + limit - 9))
    with pytest.raises(ContextLengthError) as e:
        engine.generate([long], SamplingParams(max_new_tokens=10))
    assert e.value.limit == limit and isinstance(e.value, ValueError)
    assert str(e.value) == (f"the context is {limit} tokens; the prompt has {limit - 9} + max_new_tokens 10 "
                            f"= {limit + 1}")
    assert engine.generate([long], SamplingParams(max_new_tokens=9, temperature=0))[0].completion_tokens <= 9
    with pytest.raises(ContextLengthError):
        engine.prompt_logprobs(list(range(limit + 1)))


def test_chat_template_from_the_checkpoint(engine):
    messages = [{"role": "system", "content": "Bądź zwięzły."}, {"role": "user", "content": "Cześć!"}]
    text = engine.apply_chat_template(messages)
    assert text == ("<|im_start|>system\nBądź zwięzły.<|im_end|>\n<|im_start|>user\nCześć!<|im_end|>\n"
                    "<|im_start|>assistant\n")
    ids = engine.encode_chat(messages)
    assert ids[0] == engine.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert engine.tokenizer.convert_tokens_to_ids("<|im_end|>") in engine.eos_ids  # a chat turn ends there
    assert engine.count_tokens("Ala ma kota") == len(engine.encode("Ala ma kota"))


def test_decode_batch_requests_join_and_leave(engine):
    batch = engine.new_batch(max_batch=2)
    a = batch.add(PROMPTS[0], GREEDY)
    events = batch.step()
    assert [e.request_id for e in events] == [a, a]  # admitted: first token from the prompt, then one decode
    b = batch.add(PROMPTS[1], GREEDY)
    c = batch.add(PROMPTS[2], GREEDY, request_id="mine")
    assert c == "mine"
    events = batch.step()
    assert {e.request_id for e in events} == {a, b}  # c waits for a slot
    assert batch.cancel(a) and not batch.cancel(a)
    tokens: dict[str, list[int]] = {b: [e.token_id for e in events if e.request_id == b]}
    d = batch.add(PROMPTS[3], SamplingParams(repetition_penalty=1.2, max_new_tokens=4))
    for e in batch.step():  # c takes a's slot; d waits
        tokens.setdefault(e.request_id, []).append(e.token_id)
    assert batch.cancel(d)
    done = {}
    while batch:
        for e in batch.step():
            tokens.setdefault(e.request_id, []).append(e.token_id)
            if e.completion:
                done[e.request_id] = e.completion
    assert set(done) == {b, "mine"}
    alone = engine.generate(PROMPTS[1:3], GREEDY)
    assert done[b].token_ids == alone[0].token_ids == tokens[b]
    assert done["mine"].token_ids == alone[1].token_ids
    assert batch.cancel("mine") is False


def test_an_engine_around_a_model_in_memory(folder):
    model = from_pretrained(folder)
    engine = Engine.from_model(model, folder)
    ours = engine.generate([PROMPTS[0]], GREEDY)[0].token_ids
    assert ours == Engine(folder).generate([PROMPTS[0]], GREEDY)[0].token_ids  # unfused, row-major: same tokens


def test_bad_requests_are_value_errors(engine):
    from gniazdo.infer import InvalidRequest

    batch = engine.new_batch(max_batch=1)
    batch.add("Ala", GREEDY, request_id="x")
    with pytest.raises(InvalidRequest, match="request id 'x' is already in the batch"):
        batch.add("Ola", GREEDY, request_id="x")
    with pytest.raises(ValueError, match=r"token id 1000 is outside the vocabulary \(0..999\)"):
        engine.generate([[5, 1000]], GREEDY)
    with pytest.raises(TypeError):
        engine.generate("Ala ma kota", GREEDY)
    # an empty prompt starts from <s>
    [c] = engine.generate([""], SamplingParams(temperature=0, max_new_tokens=3))
    assert c.prompt_tokens == 1 and c.completion_tokens == 3


def test_streaming_polish_and_emoji_forced_through_the_model(folder):
    text = "Zażółć gęślą jaźń 🙂🐻 — „dobrze”, 日本."
    engine = Engine(folder)
    script = engine.encode(text)
    assert any("\ufffd" in engine.tokenizer.decode([t]) for t in script)  # some tokens are partial characters
    forward, calls = engine.model.forward, []

    def scripted(*args, **kwargs):  # the model "wants" to write `text`, one token per forward
        out = forward(*args, **kwargs)
        out[..., script[min(len(calls), len(script) - 1)]] = out.max() + 10
        calls.append(1)
        return out

    engine.model.forward = scripted
    params = SamplingParams(temperature=0, max_new_tokens=len(script))
    deltas = list(engine.stream("Ala", params))
    assert "".join(deltas) == text
    assert not any("\ufffd" in d for d in deltas)
    calls.clear()
    [c] = engine.generate(["Ala"], params)
    assert c.text == text and c.token_ids == script


def test_cancel_a_running_request_with_a_repetition_penalty(engine):
    batch = engine.new_batch(max_batch=2)
    r = batch.add(PROMPTS[3], SamplingParams(repetition_penalty=1.2, max_new_tokens=8))
    batch.step()
    assert batch.running == 1 and batch.cancel(r)  # its row of the seen-token set is cleared outside step()
    assert not batch and batch.step() == []
