"""Prometheus metrics shared by every process (labelled by service)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "portail_http_requests_total", "HTTP requests answered",
    ["service", "method", "endpoint", "status"],
)
HTTP_LATENCY = Histogram(
    "portail_http_request_duration_seconds", "Time to answer an HTTP request",
    ["service", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
EVENTS_PUBLISHED = Counter(
    "portail_events_published_total", "Events confirmed by the broker", ["producer", "type"],
)
EVENTS_HANDLED = Counter(
    "portail_events_handled_total", "Events consumed, by outcome",
    ["service", "type", "outcome"],
)


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
