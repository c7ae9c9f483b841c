"""Queues (qstash-api.md §10) through the official Python SDK: queue.upsert / get / list /
delete / pause / resume, and message.enqueue / enqueue_json."""

from __future__ import annotations

import json
from typing import List

import pytest
from qstash import QStash, Receiver
from qstash.errors import QStashError

from harness import Recorded, RecordingReceiver, assert_signed_delivery, wait_until


def max_concurrency(records: List[Recorded], delay: float) -> int:
    """The most requests answered at once, each taking `delay` seconds from its arrival."""
    return max(
        (sum(1 for o in records if o.received_at <= r.received_at < o.received_at + delay) for r in records),
        default=0,
    )


def bodies(records: List[Recorded]) -> List[str]:
    return [r.body.decode("utf-8") for r in records]


def test_upsert_get_list_pause_resume_and_delete_a_queue(client: QStash) -> None:
    client.queue.upsert("sdk-py-orders", parallelism=2)
    created = client.queue.get("sdk-py-orders")
    assert created.name == "sdk-py-orders"
    assert created.parallelism == 2
    assert created.paused is False
    assert created.lag == 0
    assert created.updated_at >= created.created_at

    client.queue.pause("sdk-py-orders")
    assert client.queue.get("sdk-py-orders").paused is True
    client.queue.resume("sdk-py-orders")
    assert client.queue.get("sdk-py-orders").paused is False
    client.queue.upsert("sdk-py-orders", parallelism=4, paused=True)
    updated = client.queue.get("sdk-py-orders")
    assert (updated.parallelism, updated.paused, updated.created_at) == (4, True, created.created_at)
    assert any(q.name == "sdk-py-orders" and q.parallelism == 4 for q in client.queue.list())

    client.queue.delete("sdk-py-orders")
    client.queue.delete("sdk-py-orders")
    with pytest.raises(QStashError, match="404"):
        client.queue.get("sdk-py-orders")


def test_enqueue_creates_the_queue_and_delivers_signed_messages_in_order(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    receiver.script("/q/py/fifo", {"delay": 0.1})
    destination = receiver.url("/q/py/fifo")
    ids = [client.message.enqueue(queue="sdk-py-fifo", url=destination, body=str(n)).message_id for n in range(3)]
    assert client.queue.get("sdk-py-fifo").parallelism == 1

    delivered = receiver.wait_for("/q/py/fifo", 3)
    assert bodies(delivered) == ["0", "1", "2"]
    assert max_concurrency(delivered, 0.1) == 1
    assert_signed_delivery(delivered[0], verifier=verifier, url=destination, message_id=ids[0])


def test_a_paused_queue_accepts_json_and_delivers_it_after_resume(
    client: QStash, receiver: RecordingReceiver
) -> None:
    client.queue.upsert("sdk-py-held", paused=True)
    for n in (1, 2):
        client.message.enqueue_json(queue="sdk-py-held", url=receiver.url("/q/py/held"), body={"n": n})
    receiver.expect_no_more("/q/py/held", 0, quiet=0.5)
    assert client.queue.get("sdk-py-held").lag == 2

    client.queue.resume("sdk-py-held")
    delivered = receiver.wait_for("/q/py/held", 2)
    assert [json.loads(r.body) for r in delivered] == [{"n": 1}, {"n": 2}]
    wait_until(lambda: client.queue.get("sdk-py-held").lag == 0, what="lag to drop to 0")


def test_a_queue_with_parallelism_3_has_at_most_3_deliveries_in_flight(
    client: QStash, receiver: RecordingReceiver
) -> None:
    receiver.script("/q/py/wide", {"delay": 0.6})
    client.queue.upsert("sdk-py-wide", parallelism=3)
    for n in range(9):
        client.message.enqueue(queue="sdk-py-wide", url=receiver.url("/q/py/wide"), body=str(n))
    delivered = receiver.wait_for("/q/py/wide", 9)
    assert max_concurrency(delivered, 0.6) == 3


def test_bad_queue_settings_are_refused(client: QStash) -> None:
    with pytest.raises(QStashError, match="412"):
        client.queue.upsert("sdk-py-too-wide", parallelism=1000)
    with pytest.raises(QStashError, match="400"):
        client.queue.upsert("bad name")
