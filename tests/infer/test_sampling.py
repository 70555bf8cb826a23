"""Sampling settings and the logits → token step, against transformers' logits processors."""

from __future__ import annotations

import pytest
import torch

from gniazdo.infer import InvalidSamplingParams, SamplingParams
from gniazdo.infer.sampling import apply_repetition_penalty, sample, top_k_filter, top_p_filter


def logits(B: int = 3, V: int = 50, seed: int = 0) -> torch.Tensor:
    return torch.randn(B, V, generator=torch.Generator().manual_seed(seed)) * 2


@pytest.mark.parametrize("kw, message", [
    (dict(temperature=-1), "sampling: temperature: Input should be greater than or equal to 0 (got -1)"),
    (dict(top_p=0), "sampling: top_p: Input should be greater than 0"),
    (dict(top_p=1.5), "sampling: top_p: Input should be less than or equal to 1"),
    (dict(max_new_tokens=0), "sampling: max_new_tokens: Input should be greater than or equal to 1"),
    (dict(top_k=-2), "sampling: top_k: Input should be greater than or equal to 0"),
    (dict(repetition_penalty=0), "sampling: repetition_penalty: Input should be greater than 0"),
    (dict(stop=["ok", ""]), "sampling: stop: Value error, a stop string may not be empty"),
    (dict(stop=[str(i) for i in range(17)]), "sampling: stop: List should have at most 16 items"),
    (dict(temprature=1), "sampling: unknown key 'temprature' (valid:"),
])
def test_bad_params_are_one_line_value_errors(kw, message):
    with pytest.raises(InvalidSamplingParams) as e:
        SamplingParams(**kw)
    assert isinstance(e.value, ValueError)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_a_single_stop_string_is_a_list():
    assert SamplingParams(stop="\n\n").stop == ["\n\n"]
    assert SamplingParams(stop=None).stop == []
    assert SamplingParams(temperature=0).greedy


def test_filters_match_transformers():
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor, TopKLogitsWarper, TopPLogitsWarper,
    )

    x = logits()
    ids = torch.tensor([[1, 4, 4, 9], [0, 2, 3, 3], [7, 7, 7, 7]])
    seen = torch.zeros_like(x, dtype=torch.bool).scatter(1, ids, True)
    ours = apply_repetition_penalty(x, seen, torch.full((3, 1), 1.3))
    assert torch.allclose(ours, RepetitionPenaltyLogitsProcessor(1.3)(ids, x.clone()))
    for k in (1, 5, 49):
        assert torch.equal(top_k_filter(x, [k] * 3), TopKLogitsWarper(k)(ids, x.clone()))
    for p in (0.1, 0.5, 0.9):
        assert torch.equal(top_p_filter(x, [p] * 3), TopPLogitsWarper(p)(ids, x.clone()))


def test_filters_per_row_and_off():
    x = logits()
    assert torch.equal(top_k_filter(x, [0, 0, 0]), x)
    assert torch.equal(top_p_filter(x, [1.0, 1.0, 1.0]), x)
    mixed = top_k_filter(x, [0, 2, 0])
    assert torch.equal(mixed[0], x[0]) and torch.isfinite(mixed[1]).sum() == 2
    nucleus = top_p_filter(x, [1.0, 0.01, 1.0])
    assert torch.isfinite(nucleus[1]).sum() == 1 and nucleus[1].argmax() == x[1].argmax()  # the top one stays


def test_greedy_top_k_1_and_seeds():
    x = logits(B=4)
    greedy = x.argmax(dim=-1).tolist()
    assert sample(x, [SamplingParams(temperature=0)] * 4, [None] * 4) == greedy
    assert sample(x, [SamplingParams(temperature=1.5, top_k=1)] * 4, [None] * 4) == greedy

    def draw(seed: int, rows: int = 4) -> list[int]:
        params = [SamplingParams(temperature=1.0, seed=seed)] * rows
        return sample(x[:rows], params, [torch.Generator().manual_seed(seed) for _ in range(rows)])

    assert draw(7) == draw(7)
    draws = {tuple(draw(s)) for s in range(20)}
    assert len(draws) > 10  # sampling samples
    # a row's draw depends on its own generator, not on the rows beside it
    assert draw(7, rows=2) == draw(7)[:2]


def test_mixed_rows_greedy_and_sampled():
    x = logits(B=2)
    out = sample(x, [SamplingParams(temperature=0), SamplingParams(temperature=5.0)],
                 [None, torch.Generator().manual_seed(0)])
    assert out[0] == x[0].argmax().item()


def test_repetition_penalty_changes_the_choice():
    x = torch.tensor([[2.0, 1.9, -1.0], [2.0, 1.9, -1.0]])
    seen = torch.tensor([[True, False, False], [False, False, False]])
    params = [SamplingParams(temperature=0, repetition_penalty=1.2)] * 2
    assert sample(x, params, [None, None], seen) == [1, 0]
