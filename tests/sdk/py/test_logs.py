"""Logs through the official Python SDK: client.log.list (filters, message ids, cursor paging),
parsing entries of every state into `LogState`, CANCELED included."""

from __future__ import annotations

import base64
from typing import List

from qstash import QStash
from qstash.log import Log, LogState

from harness import RecordingReceiver, wait_until


def history(client: QStash, message_id: str) -> List[Log]:
    """The entries of `message_id`, oldest first."""
    return list(reversed(client.log.list(filter={"message_id": message_id}).logs))


def wait_for_states(client: QStash, message_id: str, expected: List[LogState]) -> List[Log]:
    """Waits until the states of `message_id` are exactly `expected` (oldest first)."""
    seen: List[Log] = []

    def probe() -> bool:
        nonlocal seen
        seen = history(client, message_id)
        return [log.state for log in seen] == expected

    wait_until(probe, what=f"states {expected} of {message_id}")
    return seen


def test_a_message_failing_once_then_delivered_parses_every_state(
    client: QStash, receiver: RecordingReceiver
) -> None:
    pathname = "/logs/flaky"
    receiver.script(pathname, [{"status": 500, "body": "not yet"}, {"status": 200}])
    destination = receiver.url(pathname)
    published = client.message.publish(
        url=destination, body="x", retries=2, retry_delay="100", label="py-flaky"
    )

    expected = [
        LogState.CREATED,
        LogState.ACTIVE,
        LogState.ERROR,
        LogState.RETRY,
        LogState.ACTIVE,
        LogState.DELIVERED,
    ]
    logs = wait_for_states(client, published.message_id, expected)
    created, _, error, retry, _, delivered = logs
    assert all(log.message_id == published.message_id and log.url == destination for log in logs)
    assert all(isinstance(log.time, int) for log in logs)
    assert created.body_base64 is not None and base64.b64decode(created.body_base64) == b"x"
    assert created.max_retries == 2
    assert created.retry_delay_expression == "100"
    assert created.label == "py-flaky"
    assert error.response_status == 500
    assert error.response_body is not None and base64.b64decode(error.response_body) == b"not yet"
    assert error.error
    assert isinstance(retry.next_delivery_time, int)
    assert delivered.response_status == 200


def test_a_failed_and_a_cancelled_message_parse_as_failed_and_canceled(
    client: QStash, receiver: RecordingReceiver
) -> None:
    receiver.script("/logs/down", {"status": 500})
    failed = client.message.publish(url=receiver.url("/logs/down"), body="x", retries=0)
    wait_for_states(
        client,
        failed.message_id,
        [LogState.CREATED, LogState.ACTIVE, LogState.ERROR, LogState.FAILED],
    )

    delayed = client.message.publish(url=receiver.url("/logs/later"), body="x", delay="1h")
    client.message.cancel(delayed.message_id)
    wait_for_states(
        client,
        delayed.message_id,
        [LogState.CREATED, LogState.CANCEL_REQUESTED, LogState.CANCELED],
    )
    only = client.log.list(filter={"message_id": delayed.message_id, "state": LogState.CANCELED})
    assert [log.state for log in only.logs] == [LogState.CANCELED]
    assert only.cursor is None


def test_message_ids_state_url_label_and_time_filters_narrow_the_logs(
    client: QStash, receiver: RecordingReceiver
) -> None:
    label = "py-filters"
    first = client.message.publish(url=receiver.url("/logs/f1"), body="1", delay="1h", label=label)
    second = client.message.publish(url=receiver.url("/logs/f2"), body="2", delay="1h", label=label)

    by_ids = client.log.list(filter={"message_ids": [first.message_id, second.message_id]})
    assert {log.message_id for log in by_ids.logs} == {first.message_id, second.message_id}
    by_label = client.log.list(filter={"label": label, "state": LogState.CREATED})
    assert len(by_label.logs) == 2
    by_url = client.log.list(filter={"url": receiver.url("/logs/f2")})
    assert [log.message_id for log in by_url.logs] == [second.message_id]

    time = by_url.logs[0].time
    since = client.log.list(filter={"label": label, "from_time": time})
    assert second.message_id in {log.message_id for log in since.logs}
    assert all(log.time >= time for log in since.logs)
    before = client.log.list(filter={"label": label, "to_time": time - 1})
    assert second.message_id not in {log.message_id for log in before.logs}


def test_paging_with_count_and_cursor_visits_each_entry_once(
    client: QStash, receiver: RecordingReceiver
) -> None:
    label = "py-paging"
    for i in range(5):
        client.message.publish(url=receiver.url("/logs/page"), body=str(i), delay="1h", label=label)
    whole = client.log.list(filter={"label": label})
    assert len(whole.logs) == 5 and whole.cursor is None

    seen: List[str] = []
    cursor = None
    for _ in range(10):
        page = client.log.list(filter={"label": label}, count=2, cursor=cursor)
        assert len(page.logs) <= 2
        seen.extend(log.message_id for log in page.logs)
        if page.cursor is None:
            break
        cursor = page.cursor
    else:
        raise AssertionError("paging does not end")
    assert seen == [log.message_id for log in whole.logs]
