"""The shared delivery rules: replace-semantics progress, at-least-once ordered events."""

from __future__ import annotations

import json

from domain_client.delivery import Outbox, json_safe


def test_only_the_events_a_send_carried_are_dropped_on_acknowledgement() -> None:
    outbox = Outbox()
    outbox.add_event({"n": 1})
    outbox.set_progress({"pct": 1})
    batch = outbox.take()
    assert not outbox.changed.is_set()
    outbox.add_event({"n": 2})  # arrives while the send is in flight
    outbox.set_progress({"pct": 2})
    assert outbox.changed.is_set()
    outbox.acknowledge(batch)
    assert outbox.pending_events == [{"n": 2}] and outbox.progress == {"pct": 2}
    again = outbox.take()
    assert (again.progress, again.events) == ({"pct": 2}, [{"n": 2}])


def test_a_failed_send_keeps_every_event_for_the_next_one() -> None:
    outbox = Outbox()
    outbox.add_event("a")
    outbox.take()  # never acknowledged
    outbox.add_event("b")
    assert outbox.take().events == ["a", "b"]


def test_a_bounded_outbox_drops_the_oldest_and_acknowledges_by_position() -> None:
    outbox = Outbox(max_events=3)
    for n in range(3):
        outbox.add_event(n)
    batch = outbox.take()  # carries 0, 1, 2
    for n in range(3, 5):
        outbox.add_event(n)  # 0 and 1 are dropped while the send is in flight
    assert outbox.pending_events == [2, 3, 4]
    outbox.acknowledge(batch)
    assert outbox.pending_events == [3, 4]
    outbox.acknowledge(batch)  # a repeated acknowledgement drops nothing more
    assert outbox.pending_events == [3, 4]


def test_json_safe_replaces_lone_surrogates_and_stringifies_the_rest() -> None:
    value = json_safe({"message": "frame_\udcff.jpg", "at": 3, "é": "ü"})
    assert value == {"message": "frame_?.jpg", "at": 3, "é": "ü"}
    json.dumps(value, ensure_ascii=False).encode("utf-8")
    assert json_safe({"path": object.__new__(object)})["path"].startswith("<object object")
