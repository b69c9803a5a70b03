"""The queues the code declares are exactly those of deploy/rabbitmq/definitions.json.

RabbitMQ refuses (406 PRECONDITION_FAILED) a declaration whose arguments differ from the
existing queue's, so a drift between the two would stop every worker in production.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.common.bus import DEFAULT_RETRY_DELAYS, Topology
from suite import registry

DEFINITIONS = json.loads(
    (Path(__file__).parents[1] / "deploy" / "rabbitmq" / "definitions.json").read_text())
QUEUES = {q["name"]: q for q in DEFINITIONS["queues"]}
BINDINGS = {(b["source"], b["destination"], b["routing_key"]) for b in DEFINITIONS["bindings"]}
TOPOLOGY = Topology(prefix="", retry_delays=DEFAULT_RETRY_DELAYS, queue_type="quorum")


def consumers():
    return [(name, sorted(registry.events_module(name).HANDLERS))
            for name in registry.SERVICES if registry.events_module(name).HANDLERS]


@pytest.mark.parametrize(("service", "keys"), consumers())
def test_declared_queues_match_definitions(service, keys):
    declared = [TOPOLOGY.queue(service, keys), TOPOLOGY.dlq(service),
                *TOPOLOGY.retry_queues(service)]
    for queue in declared:
        assert queue.name in QUEUES, f"{queue.name} manque dans definitions.json"
        assert QUEUES[queue.name]["arguments"] == queue.queue_arguments, queue.name
        assert QUEUES[queue.name]["durable"] is True


@pytest.mark.parametrize(("service", "keys"), consumers())
def test_every_handled_event_is_bound(service, keys):
    for key in keys:
        assert ("portail.events", f"{service}.events", key) in BINDINGS, (service, key)


def test_exchanges_match():
    exchanges = {e["name"]: e["type"] for e in DEFINITIONS["exchanges"]}
    assert exchanges[TOPOLOGY.exchange.name] == "topic"
    assert exchanges[TOPOLOGY.dlx.name] == "direct"


def test_no_queue_fills_up_unconsumed():
    """A binding with no handler behind it would pile messages up forever."""
    handled = dict(consumers())
    for source, queue, key in BINDINGS:
        if source != "portail.events":
            continue
        service = queue.removesuffix(".events")
        assert key in handled.get(service, []), f"{queue} lié à {key} sans consommateur"
