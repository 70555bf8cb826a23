"""An interactive conversation with a checkpoint: the history, ``/`` commands, and the context budget.

Each user line is added to the conversation, the whole conversation is rendered with the checkpoint's chat
template, and the reply streams back. When the conversation no longer fits the context (prompt plus
``max_new_tokens``), the oldest exchanges are dropped, never the system prompt or the new message.
"""

from __future__ import annotations

from typing import Callable, Iterable

from gniazdo.infer.engine import ContextLengthError, Engine
from gniazdo.infer.sampling import SamplingParams

HELP = "commands: /system TEXT (set the system prompt), /reset (forget the conversation), /exit (quit)"


class ChatSession:
    """The state of one conversation. :meth:`send` streams a reply; :meth:`handle` also understands commands."""

    def __init__(self, engine: Engine, params: SamplingParams, system: str | None = None) -> None:
        if not engine.chat_template:
            from gniazdo.errors import UserError

            raise UserError("chat needs a chat_template in the checkpoint's tokenizer_config.json")
        self.engine, self.params = engine, params
        self.system = system or None
        self.history: list[dict[str, str]] = []  # user and assistant turns, alternating

    def messages(self, history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + (self.history if history is None else history)

    def reset(self) -> None:
        self.history = []

    def prompt_ids(self, user: str) -> list[int]:
        """Token ids of the conversation plus ``user``'s message, oldest exchanges dropped until it fits."""
        history = [*self.history, {"role": "user", "content": user}]
        while True:
            ids = self.engine.encode_chat(self.messages(history))
            if len(ids) + self.params.max_new_tokens <= self.engine.max_len or len(history) == 1:
                break
            history = history[2:]  # the oldest user message and its answer
        self.engine.check_length(len(ids), self.params.max_new_tokens)
        self.history = history[:-1]
        return ids

    def send(self, user: str, write: Callable[[str], None]) -> str:
        """Stream the answer to ``user`` through ``write``; the exchange joins the history."""
        ids = self.prompt_ids(user)
        reply = "".join(_tee(self.engine.stream(ids, self.params), write))
        self.history += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        return reply

    def handle(self, line: str, write: Callable[[str], None]) -> bool:
        """One input line: a command or a message. Returns False when the session should end."""
        text = line.strip()
        if not text:
            return True
        command, _, arg = text.partition(" ")
        if command in ("/exit", "/quit"):
            return False
        if command == "/reset":
            self.reset()
            write("(conversation cleared)\n")
        elif command == "/system":
            self.system = arg.strip() or None
            write(f"(system prompt {'set' if self.system else 'removed'})\n")
        elif command == "/help":
            write(HELP + "\n")
        elif command.startswith("/") and command[1:].isalpha():  # "/usr/bin ..." is still a message
            write(f"(unknown command {command}; {HELP})\n")
        else:
            try:
                self.send(text, write)
            except ContextLengthError as e:
                write(f"(too long: {e})")
            write("\n")
        return True

    def run(self, lines: Iterable[str], write: Callable[[str], None],
            prompt: Callable[[], None] = lambda: None) -> None:
        """The loop: ``prompt()`` before each line is read, until /exit or the end of the input."""
        prompt()
        for line in lines:
            if not self.handle(line, write):
                return
            prompt()


def _tee(deltas: Iterable[str], write: Callable[[str], None]) -> Iterable[str]:
    for d in deltas:
        write(d)
        yield d
