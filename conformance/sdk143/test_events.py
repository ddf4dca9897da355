"""Event triggers: EventsService/Push and BulkPush start the workflows listening on the key."""

from __future__ import annotations

import time

import pytest

from hatchet_sdk.types.trigger import BulkPushEventWithMetadata

pytestmark = pytest.mark.timeout(90)


def on_order_runs(general, order_id=None):
    runs = general.worker.records.of("task", task="on_order")
    if order_id is not None:
        runs = [r for r in runs if r["input"]["order_id"] == order_id]
    return runs


def test_push_starts_the_workflow_with_the_payload_as_input(general):
    hatchet, _ = general.client()
    hatchet.event.push("order:cancelled", {"order_id": 6})  # nobody listens on this key
    event = hatchet.event.push("order:placed", {"order_id": 7, "item": "anvil"})

    assert event.event_id, "Push answered an Event without event_id"
    assert event.key == f"{general.namespace}_order:placed", (
        f"Push should echo the (namespaced) key, got {event.key!r}"
    )

    runs = general.worker.records.wait_for(
        "the order:placed event to start on_order",
        lambda recs: on_order_runs(general, 7),
        timeout=30,
        alive=general.worker.check_alive,
    )
    assert runs[0]["input"] == {"order_id": 7, "item": "anvil"}

    time.sleep(1.0)  # a second run, or one for order 6, would have shown up by now
    assert len(on_order_runs(general, 7)) == 1, on_order_runs(general)
    assert on_order_runs(general, 6) == [], "an event with a key no workflow listens on started a run"


def test_bulk_push_starts_one_run_per_event(general):
    hatchet, _ = general.client()
    events = hatchet.event.bulk_push(
        [
            BulkPushEventWithMetadata(key="order:placed", payload={"order_id": 100 + i, "item": f"bulk{i}"})
            for i in range(3)
        ]
    )
    assert len(events) == 3 and all(e.event_id for e in events), events

    general.worker.records.wait_for(
        "three bulk-pushed events to start on_order",
        lambda recs: {r["input"]["order_id"] for r in on_order_runs(general)} >= {100, 101, 102},
        timeout=30,
        alive=general.worker.check_alive,
    )
