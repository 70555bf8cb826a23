"""Chat templates: a conversation → token ids and a mask of the tokens the model learns.

Two templates, each with the Jinja ``chat_template`` that transformers and serving engines read from
``tokenizer_config.json`` (:func:`write_template` stores it there, so training and serving format alike):

* ``chatml``: ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message; generation prompt
  ``<|im_start|>assistant\\n``. The template of ``gniazdo tokenizer train``.
* ``mistral``: ``<s>[INST] {user} [/INST] {assistant}</s>[INST] ...`` (Mistral / Llama-2); a system message
  goes before the first user message, separated by a blank line, as Mistral's own template does.

**What is learned.** Only each assistant message's content and its end marker (``<|im_end|>`` / ``</s>``, so the
model learns to stop); the role headers, system and user turns are context.

**How the mask is exact.** The whole rendered text is tokenized in one call (so the ids are exactly those of
``tokenizer.apply_chat_template(..., tokenize=True)``) and a token is learned when it *starts* inside an assistant
span, by the tokenizer's character offsets. Tokenizing piece by piece instead would give other ids wherever
a BPE merge or pre-token crosses a piece boundary (``]`` + a word, ``\\n`` + a leading ``\\n``), i.e. ids the
server never produces. Both templates put their assistant boundaries where our pre-tokenizer always cuts: after
the header's ``\\n`` (chatml) and before the space that starts the answer (mistral: ``[/INST]`` | `` answer``,
which is also why the answer begins with a space, as in Llama-2). The one odd case, an answer that begins with
a line break in chatml, merges it into the header's ``\\n`` token, which then counts as context.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from gniazdo.errors import UserError
from gniazdo.fileio import write_json_atomic
from gniazdo.sft.conversations import BadRecord
from gniazdo.tokenizer.train import CHAT_TEMPLATE as CHATML_TEMPLATE

Messages = Sequence[dict[str, Any]]
#: (text, learned character spans [start, end))
Rendered = tuple[str, list[tuple[int, int]]]

#: Mistral / Llama-2 style; literal <s> and </s> (not bos_token/eos_token) so the text never depends on a config
MISTRAL_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set loop_messages = messages %}{% endif %}"
    "{{ '<s>' }}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('mistral: user and assistant turns must alternate, starting with user') }}{% endif %}"
    "{% if message['role'] == 'user' %}"
    "{% if loop.first and system %}{{ '[INST] ' + system + '\n\n' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}"
    "{% else %}{{ ' ' + message['content'] + '</s>' }}{% endif %}"
    "{% endfor %}"
)


def _render_chatml(messages: Messages) -> Rendered:
    text, spans = [], []
    pos = 0
    for m in messages:
        head = f"<|im_start|>{m['role']}\n"
        body = m["content"] + "<|im_end|>"
        if m["role"] == "assistant":
            spans.append((pos + len(head), pos + len(head) + len(body)))
        text.append(head + body + "\n")
        pos += len(head) + len(body) + 1
    return "".join(text), spans


def _render_mistral(messages: Messages) -> Rendered:
    messages = list(messages)
    system = ""
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"], messages[1:]
    text, spans = "<s>", []
    for i, m in enumerate(messages):
        if m["role"] != ("user" if i % 2 == 0 else "assistant"):
            raise BadRecord("template", "mistral: user and assistant turns must alternate, starting with user "
                                        "(after an optional first system message)")
        if m["role"] == "user":
            content = f"{system}\n\n{m['content']}" if i == 0 and system else m["content"]
            text += f"[INST] {content} [/INST]"
        else:
            body = f" {m['content']}</s>"
            spans.append((len(text), len(text) + len(body)))
            text += body
    return text, spans


def backend(tokenizer: Any):
    """The HF ``tokenizers.Tokenizer`` behind a transformers tokenizer, a tokenizer folder or itself."""
    if isinstance(tokenizer, (str, Path)):
        from gniazdo.shards.writer import _load_tokenizer

        return _load_tokenizer(tokenizer)[0]
    return getattr(tokenizer, "backend_tokenizer", tokenizer)


def learn_mask(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """True for the tokens whose first character lies in one of the (sorted, disjoint) spans."""
    starts = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(offsets))
    if not spans:
        return np.zeros(len(starts), dtype=bool)
    lo = np.array([s for s, _ in spans], dtype=np.int64)
    hi = np.array([e for _, e in spans], dtype=np.int64)
    k = np.searchsorted(lo, starts, side="right") - 1  # the last span starting at or before each token
    return (k >= 0) & (starts < hi[np.maximum(k, 0)])


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    chat_template: str  # Jinja, for tokenizer_config.json
    end_token: str  # ends an assistant turn: learned, and the stop token when serving
    special: tuple[str, ...]  # tokens the tokenizer must have as single tokens
    markers: tuple[str, ...]  # control strings that may not occur inside a message (they would fake a turn)
    _render: Callable[[Messages], Rendered]

    def render_text(self, messages: Messages) -> Rendered:
        """The text ``apply_chat_template`` gives, and the character spans that are learned."""
        for m in messages:
            for marker in self.markers:
                if marker in m["content"]:
                    raise BadRecord("marker_in_content", f"a message contains the template marker {marker!r}")
        return self._render(messages)

    def render(self, messages: Messages, tokenizer: Any) -> tuple[list[int], list[bool]]:
        """Token ids of the conversation and, per token, whether the model learns it (see the module docstring).
        ``tokenizer``: a ``tokenizers.Tokenizer``, a transformers fast tokenizer or a tokenizer folder."""
        ids, learn = self.render_batch([messages], backend(tokenizer))[0]
        return ids.tolist(), learn.tolist()

    def render_batch(self, conversations: Sequence[Messages], tokenizer: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`render` for many conversations at once (the tokenizer encodes them in parallel): a list of
        (int64 ids, bool learn) arrays. Raises :class:`BadRecord` for a conversation the template can't format."""
        return self.encode([self.render_text(m) for m in conversations], tokenizer)

    def encode(self, rendered: Sequence[Rendered], tokenizer: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        """Tokenize texts from :meth:`render_text`: (int64 ids, bool learn) per text."""
        encs = backend(tokenizer).encode_batch([t for t, _ in rendered], add_special_tokens=False)
        return [(np.asarray(e.ids, dtype=np.int64), learn_mask(e.offsets, spans))
                for e, (_, spans) in zip(encs, rendered)]

    def check_tokenizer(self, tokenizer: Any, where: str = "the tokenizer") -> None:
        """Each special token must be one token, or the model can't learn to stop (nor the server stop it)."""
        tok = backend(tokenizer)
        for marker in self.special:
            if len(tok.encode(marker, add_special_tokens=False).ids) != 1:
                raise UserError(f"{where} has no {marker!r} token, which template '{self.name}' needs")

    def end_id(self, tokenizer: Any) -> int:
        return backend(tokenizer).token_to_id(self.end_token)


TEMPLATES: dict[str, ChatTemplate] = {
    "chatml": ChatTemplate("chatml", CHATML_TEMPLATE, "<|im_end|>", ("<|im_start|>", "<|im_end|>"),
                           ("<|im_start|>", "<|im_end|>"), _render_chatml),
    "mistral": ChatTemplate("mistral", MISTRAL_TEMPLATE, "</s>", ("<s>", "</s>"),
                            ("<s>", "</s>", "[INST]", "[/INST]"), _render_mistral),
}


def get_template(name: str) -> ChatTemplate:
    if name not in TEMPLATES:
        raise UserError(f"unknown chat template '{name}' (valid: {', '.join(TEMPLATES)})")
    return TEMPLATES[name]


def write_template(tokenizer_dir: str | Path, name: str) -> Path:
    """Store template ``name`` as ``chat_template`` in ``tokenizer_dir/tokenizer_config.json`` (serving reads it
    from there) after checking the tokenizer has its tokens. Returns the config's path."""
    import json

    template = get_template(name)
    folder = Path(tokenizer_dir)
    template.check_tokenizer(folder, where=str(folder))
    path = folder / "tokenizer_config.json"
    config: dict[str, Any] = {}
    if path.is_file():
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise UserError(f"{path}: not valid JSON ({e})") from None
    config["chat_template"] = template.chat_template
    write_json_atomic(path, config)
    return path
