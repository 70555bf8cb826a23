"""Prometheus metrics of one app (``GET /metrics``), in a registry of its own: two apps in one process (tests,
several servers) do not share or collide on counters.

    gniazdo_requests_total{route,status}            every HTTP request, by route template and status
    gniazdo_errors_total{route,type}                 answers >= 400, by OpenAI error type
    gniazdo_request_latency_seconds{route}           until the last byte (a stream's whole duration)
    gniazdo_prompt_tokens_total{model}               prompt tokens of accepted requests
    gniazdo_generated_tokens_total{model}            tokens generated (cancelled requests' too)
    gniazdo_tokens_per_second{model}                 generation rate over the last seconds
    gniazdo_queue_depth{model}                       requests waiting for a slot of the batch
    gniazdo_running_requests{model}                  requests in the batch
    gniazdo_guard_events_total{where,category}       texts the guard flagged (where: prompt / response)

The gauges of the workers are read when /metrics is scraped (``refresh``), so they cost nothing in between.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from gniazdo.serve.worker import Worker

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class ServeMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("gniazdo_requests", "HTTP requests", ["route", "status"], registry=r)
        self.errors = Counter("gniazdo_errors", "HTTP answers with an error status", ["route", "type"], registry=r)
        self.latency = Histogram("gniazdo_request_latency_seconds", "Request latency (a stream: its whole duration)",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.prompt_tokens = Counter("gniazdo_prompt_tokens", "Prompt tokens", ["model"], registry=r)
        self.generated_tokens = Counter("gniazdo_generated_tokens", "Generated tokens", ["model"], registry=r)
        self.tokens_per_second = Gauge("gniazdo_tokens_per_second", "Generated tokens per second, recent",
                                       ["model"], registry=r)
        self.queue_depth = Gauge("gniazdo_queue_depth", "Requests waiting for a batch slot", ["model"], registry=r)
        self.running = Gauge("gniazdo_running_requests", "Requests in the decoding batch", ["model"], registry=r)
        self.guard_events = Counter("gniazdo_guard_events", "Texts flagged by the guard", ["where", "category"],
                                    registry=r)

    def observe_request(self, route: str, status: int, seconds: float, error_type: str | None = None) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, error_type or "error").inc()

    def guard_event(self, where: str, categories: Iterable[str]) -> None:
        for category in list(categories) or ["unknown"]:
            self.guard_events.labels(where, category).inc()

    def refresh(self, workers: dict[str, Worker]) -> None:
        for name, w in workers.items():
            self.queue_depth.labels(name).set(w.waiting)
            self.running.labels(name).set(w.running)
            self.tokens_per_second.labels(name).set(w.tokens_per_second())

    def render(self) -> bytes:
        return generate_latest(self.registry)
