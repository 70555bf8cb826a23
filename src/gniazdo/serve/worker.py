"""One thread per model that owns its :class:`~gniazdo.infer.engine.DecodeBatch` (dynamic batching).

The asyncio side never touches the batch: it hands commands to the worker through a thread-safe inbox
(``submit`` a request, ``cancel`` one, ``call`` a function such as a prompt-logprob job) and gets results
through a ``sink`` callback that the worker calls on its own thread (the service's sink moves each item into a
per-request ``asyncio.Queue`` with ``loop.call_soon_threadsafe``). The loop:

    wait for commands while idle → apply every queued command → batch.step() → each Event to its sink → repeat

so requests join and leave the running batch between steps, and a prompt-logprob job runs between two steps.

``max_queue`` bounds the work a model accepts (waiting + running requests and pending jobs): ``reserve`` raises
429 beyond it, before anything is queued. The thread survives any single request: an exception while adding a
request goes to that request's sink; one inside ``step`` fails the requests of that batch (they shared the
forward pass), which is then rebuilt, and the loop goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

from gniazdo.infer.engine import DecodeBatch, Engine, Request
from gniazdo.serve.errors import ServeError

log = logging.getLogger(__name__)

Sink = Callable[[Any], None]  # receives Events, then nothing more once one has finish_reason; or an Exception
RATE_WINDOW = 2.0  # seconds of steps the tokens/s figure averages over


@dataclass
class WorkerStats:
    steps: int = 0
    tokens: int = 0  # generated tokens (one per request per step)
    peak_batch: int = 0  # the most requests that advanced in one step
    failed_steps: int = 0
    jobs: int = 0


class Worker:
    """The batching thread of one model. ``start`` it once; ``stop`` ends it and fails what is still open."""

    def __init__(self, name: str, engine: Engine, max_batch: int = 8, max_queue: int = 64,
                 max_len: int | None = None) -> None:
        self.name, self.engine = name, engine
        self.max_batch, self.max_queue = max_batch, max_queue
        self.batch: DecodeBatch = engine.new_batch(max_batch, max_len)
        self.max_len = self.batch.max_len
        self.stats = WorkerStats()
        self._inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._sinks: dict[str, Sink] = {}
        self._load = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._recent: list[tuple[float, int]] = []  # (time, tokens) of recent steps, for tokens/s

    # --- the asyncio side (any thread) ------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"gniazdo-worker-{self.name}", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        if self._thread is not None and self._thread.is_alive():
            self._inbox.put(("stop",))
            self._thread.join(timeout)

    @property
    def load(self) -> int:
        """Requests and jobs accepted and not yet finished."""
        return self._load

    def reserve(self, n: int = 1) -> None:
        """Take ``n`` places in the queue, or raise 429 when the model is full. Each place is given back when
        its request finishes, fails or is cancelled (jobs: when they have run)."""
        with self._lock:
            if self._stopped:
                raise ServeError(503, "the server is shutting down")
            if self._load + n > self.max_queue:
                self._full()
            self._load += n

    def ensure_room(self, n: int) -> None:
        """429 unless ``n`` more requests fit now (nothing is reserved)."""
        if self._load + n > self.max_queue:
            self._full()

    def _full(self) -> None:
        raise ServeError(429, f"model '{self.name}' is busy: {self._load} requests queued or running "
                              f"(max_queue {self.max_queue}); retry later")

    def release(self, n: int = 1) -> None:
        with self._lock:
            self._load = max(0, self._load - n)

    def submit(self, request: Request, sink: Sink) -> None:
        """Queue a reserved request; its Events (or an exception) go to ``sink`` on the worker thread."""
        self.start()
        self._inbox.put(("add", request, sink))

    def cancel(self, request_id: str) -> None:
        """Drop the request (no-op once it finished); its place in the queue is given back."""
        self._inbox.put(("cancel", request_id))

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run ``fn`` on the worker thread between two steps (a reserved job); its result comes in the Future."""
        self.start()
        future: Future = Future()
        self._inbox.put(("call", fn, future))
        return future

    @property
    def waiting(self) -> int:
        return len(self.batch.waiting)

    @property
    def running(self) -> int:
        return self.batch.running

    def tokens_per_second(self) -> float:
        """Generated tokens per second over the last few seconds (0 when idle)."""
        now = time.monotonic()
        recent = [(t, n) for t, n in list(self._recent) if now - t <= RATE_WINDOW]
        return sum(n for _, n in recent) / RATE_WINDOW if recent else 0.0

    # --- the worker thread ------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                if not self._drain(block=not self.batch):
                    break
                if self.batch:
                    self._step()
            except Exception:  # never die: whatever slipped through is logged and the loop goes on
                log.exception("worker %s: unexpected error", self.name)
        self._shut_down(ServeError(503, "the server is shutting down"))

    def _shut_down(self, error: ServeError) -> None:
        """Fail the open requests and whatever is still in the inbox, so no caller waits forever."""
        self._fail_all(error)
        while True:
            try:
                command = self._inbox.get_nowait()
            except queue.Empty:
                return
            if command[0] == "add":
                self.release()
                _deliver(command[2], error)
            elif command[0] == "call":
                self.release()
                command[2].set_exception(error)

    def _drain(self, block: bool) -> bool:
        """Apply the queued commands (waiting for one when idle); False on stop."""
        try:
            command = self._inbox.get() if block else self._inbox.get_nowait()
        except queue.Empty:
            return True
        while True:
            if command[0] == "stop":
                return False
            self._apply(command)
            try:
                command = self._inbox.get_nowait()
            except queue.Empty:
                return True

    def _apply(self, command: tuple[Any, ...]) -> None:
        kind = command[0]
        if kind == "add":
            _, request, sink = command
            try:
                self.batch.add(request)
            except Exception as e:  # a request the batch refuses: that request's error only
                self.release()
                _deliver(sink, e)
                return
            self._sinks[request.id] = sink
        elif kind == "cancel":
            if self._sinks.pop(command[1], None) is not None:
                self.batch.cancel(command[1])
                self.release()
        elif kind == "call":
            _, fn, future = command
            self.stats.jobs += 1
            try:
                if future.set_running_or_notify_cancel():
                    future.set_result(fn())
            except Exception as e:
                future.set_exception(e)
            finally:
                self.release()

    def _step(self) -> None:
        t0 = time.monotonic()
        try:
            events = self.batch.step()
        except Exception as e:
            log.exception("worker %s: a decoding step failed; failing its %d requests", self.name, len(self._sinks))
            self.stats.failed_steps += 1
            self._fail_all(e)
            self.batch = self.engine.new_batch(self.max_batch, self.max_len)
            return
        self.stats.steps += 1
        self.stats.tokens += len(events)
        self.stats.peak_batch = max(self.stats.peak_batch, len(events))
        self._recent = [(t, n) for t, n in self._recent if t0 - t <= RATE_WINDOW] + [(t0, len(events))]
        for event in events:
            sink = self._sinks.get(event.request_id)
            if sink is None:
                continue
            if event.finish_reason is not None:
                del self._sinks[event.request_id]
                self.release()
            if not _deliver(sink, event) and event.finish_reason is None:  # nobody listens any more
                del self._sinks[event.request_id]
                self.batch.cancel(event.request_id)
                self.release()

    def _fail_all(self, error: Exception) -> None:
        for request_id, sink in list(self._sinks.items()):
            self.batch.cancel(request_id)
            self.release()
            _deliver(sink, error)
        self._sinks.clear()


def _deliver(sink: Sink, item: Any) -> bool:
    """Hand ``item`` to the sink; False when the sink is gone (its event loop closed)."""
    try:
        sink(item)
        return True
    except Exception:
        return False
